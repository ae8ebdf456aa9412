namespace FastOverlay.Tests; internal static class AssemblyInfo { }
