namespace FastOverlay.Tests.Lab;

[CollectionDefinition("netns", DisableParallelization = true)]
public sealed class NetnsCollection;
