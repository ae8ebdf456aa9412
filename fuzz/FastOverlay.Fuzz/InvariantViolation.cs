namespace FastOverlay.Fuzz;

/// <summary>
/// An input made the data plane break one of its promises. Thrown out of the target, so SharpFuzz reports
/// FAULT_CRASH to afl-fuzz and the input lands in crashes/; in the replay test it fails the test.
/// </summary>
public sealed class InvariantViolation : Exception
{
    public InvariantViolation(string message) : base(message) { }

    public InvariantViolation() { }

    public InvariantViolation(string message, Exception inner) : base(message, inner) { }

    public static void Check(bool condition, string message)
    {
        if (!condition) throw new InvariantViolation(message);
    }
}
