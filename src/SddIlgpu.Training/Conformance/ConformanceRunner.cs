// Runs every conformance check on a device (sdd doctor): each op's forward and backward against a float64
// reference, then whole-model steps (against golden fixtures, or against a second device). A check that
// throws is a failure with the exception as its note; the run always continues to the end.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Training.Conformance;

public static class ConformanceRunner
{
    /// <summary>The names of the op checks, in the order they run.</summary>
    public static IReadOnlyList<string> OpCheckNames => [.. OpChecks().Select(c => c.Name)];

    /// <summary>
    /// Runs every op check on <paramref name="device"/> through <paramref name="ops"/> (default: the device's
    /// own op set; tests pass a wrapper with a broken op to prove failures are reported).
    /// </summary>
    public static IReadOnlyList<CheckResult> RunOps(Device device, OpSet? ops = null, Action<CheckResult>? onResult = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        var results = new List<CheckResult>();
        foreach (var (name, tolerance, run) in OpChecks())
        {
            CheckResult r;
            using (var probe = new Probe(device, ops ?? device.Ops))
            {
                try
                {
                    r = new CheckResult(name, run(probe), tolerance);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    r = CheckResult.Failed(name, tolerance, e);
                }
            }
            results.Add(r);
            onResult?.Invoke(r);
        }
        return results;
    }

    static IEnumerable<(string Name, double Tolerance, Func<Probe, double> Run)> OpChecks() =>
        MatrixChecks.All().Concat(LayerOpChecks.All()).Concat(VectorOpChecks.All());

    /// <summary>Runs <paramref name="check"/> as one named result, turning an exception into a failure.</summary>
    internal static CheckResult Guard(string name, double tolerance, Func<double> check, string? note = null)
    {
        try
        {
            return new CheckResult(name, check(), tolerance, note);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return CheckResult.Failed(name, tolerance, e);
        }
    }
}
