// What a training run will allocate, computed before anything is (issue 10 §4): parameters, gradients, AdamW
// state and activations for (model config, batch), from the very length functions the constructors allocate with
// (ModelWeights.Layout, AdamW.StateLength, Model.ActivationLength, Trainer.StatsLength), in checked 64-bit arithmetic.
using System.Globalization;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Training;

/// <summary>A run too large for its device or for the sizes the code can address; the message gives the estimate and the fix.</summary>
public sealed class RunTooLargeException(string message) : ArgumentException(message);

/// <summary>
/// Bytes a training run needs, by part (all float32). Device parts live in device memory; <see cref="HostBytes"/> is
/// host RAM for staging (initialisation, checkpoint writes, batches), which on the CPU devices is the same memory.
/// </summary>
/// <param name="Model">The model configuration.</param>
/// <param name="Batch">B, sequences per micro-batch.</param>
/// <param name="ParameterCount">Scalar parameters (the weights' arena).</param>
/// <param name="ParameterBytes">The parameter arena.</param>
/// <param name="GradientBytes">The gradient arena (same size).</param>
/// <param name="OptimizerBytes">AdamW's arena: m, v, the decay mask and ‖g‖².</param>
/// <param name="ActivationBytes">The model's activation arena for (B, T).</param>
/// <param name="OtherDeviceBytes">The trainer's stats and, when the run samples, the batch-1 sampler's activations.</param>
/// <param name="HostBytes">Peak host staging: a checkpoint write copies weights and both moments twice, plus the batch buffers.</param>
/// <param name="LargestTensor">Elements of the largest single tensor or flat view (parameters, logits, the attention's saved state or scratch, ...).</param>
public sealed record MemoryEstimate(
    ModelConfig Model, int Batch, long ParameterCount, long ParameterBytes, long GradientBytes, long OptimizerBytes,
    long ActivationBytes, long OtherDeviceBytes, long HostBytes, long LargestTensor)
{
    /// <summary>The attention storage plan the estimate was made with (the device's: see <see cref="AttentionStorage.For"/>).</summary>
    public IAttentionStorage Attention { get; init; } = AttentionStorage.Materialized;

    /// <summary>Whether the estimate assumed fused FFN ops (<c>device.Ops.FusedFfn is not null</c>; see <see cref="Layers.Model.ActivationLength"/>).</summary>
    public bool FusedFfn { get; init; }

    /// <summary>Whether the estimate assumed packed linear weights (<c>device.Ops.WeightPacking is not null</c>: the <c>cpu</c> device).</summary>
    public bool PackedWeights { get; init; }

    /// <summary>The packed copies of the linear weights the device keeps (<see cref="ModelWeights.PackedLength"/>), 0 without packing.</summary>
    public long PackedWeightBytes { get; init; }

    /// <summary>The most elements one tensor may have: host copies are .NET arrays and managed kernels index with int.</summary>
    public static readonly long MaxTensorElements = Array.MaxLength;

    /// <summary>Everything that lives in device memory, in bytes.</summary>
    public long DeviceBytes => checked(ParameterBytes + GradientBytes + OptimizerBytes + ActivationBytes + OtherDeviceBytes + PackedWeightBytes);

    /// <summary>Bytes needed from the device's memory: on the CPU devices host staging shares it.</summary>
    public long RequiredBytes(bool hostMemoryDevice) => hostMemoryDevice ? checked(DeviceBytes + HostBytes) : DeviceBytes;

    /// <summary>
    /// The estimate for <paramref name="model"/> trained with <paramref name="train"/> on a device whose attention has the
    /// storage plan <paramref name="attention"/> (<c>device.Ops.Attention</c>) and, with <paramref name="fusedFfn"/>, fused
    /// FFN ops (<c>device.Ops.FusedFfn is not null</c>; false gives the larger estimate) and, with
    /// <paramref name="packedWeights"/>, packed weight copies (<c>device.Ops.WeightPacking is not null</c>). Throws
    /// <see cref="RunTooLargeException"/> when a size overflows the int rows or long byte counts the code uses.
    /// </summary>
    public static MemoryEstimate For(ModelConfig model, TrainConfig train, IAttentionStorage attention, bool fusedFfn = false, bool packedWeights = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        return TryFor(model, train, attention, fusedFfn, packedWeights) ?? throw new RunTooLargeException(string.Create(CultureInfo.InvariantCulture,
            $"This run is too large to address: with {Sizes(model, train.Batch)} a size overflows the 32-bit rows or 64-bit byte counts the code uses. Lower --batch, --seq-len, --d-model or --n-layer."));
    }

    /// <summary>The estimate, or null when a size overflows.</summary>
    public static MemoryEstimate? TryFor(ModelConfig model, TrainConfig train, IAttentionStorage attention, bool fusedFfn = false, bool packedWeights = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(attention);
        try
        {
            checked
            {
                var (count, linears) = CountParameters(model);
                var c = model;
                long b = train.Batch, n = b * c.SeqLen;
                var activations = Layers.Model.ActivationLength(c, train.Batch, attention, fusedFfn);
                var other = (long)Trainer.StatsLength(checked((int)linears)) + (train.SampleEvery > 0 ? Layers.Model.ActivationLength(c, 1, attention, fusedFfn) : 0);
                var shape = CausalSelfAttention.Shape(c, train.Batch);
                var largest = new[]
                {
                    count, n * c.Vocab, attention.SavedLength(shape), attention.ScratchLength(shape), n * 2 * c.FfnHidden, n * c.DModel, n * c.NHead * c.HeadDim,
                    packedWeights ? LargestPackedWeight(model) : 0,
                }.Max();
                var e = new MemoryEstimate(c, train.Batch, count, 4 * count, 4 * count, 4 * AdamW.StateLength(count), 4 * activations,
                    4 * other, 4 * (6 * count + 2 * n), largest)
                {
                    Attention = attention, FusedFfn = fusedFfn, PackedWeights = packedWeights, PackedWeightBytes = packedWeights ? 4 * PackedWeightLength(model) : 0,
                };
                _ = e.RequiredBytes(hostMemoryDevice: true); // the totals must not overflow either
                return e;
            }
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>
    /// Scalar parameters and linear weight matrices of a model, from <see cref="ModelWeights.Layout"/> of its one- and
    /// two-block versions (blocks are identical), so a config with millions of layers costs nothing to count.
    /// </summary>
    public static (long Parameters, long LinearWeights) CountParameters(ModelConfig model)
    {
        ArgumentNullException.ThrowIfNull(model);
        static (long, long) Count(ModelConfig c)
        {
            var layout = ModelWeights.Layout(c);
            return (layout.Sum(p => p.Shape.Length), layout.Count(p => p.Kind == ParamKind.Matrix));
        }
        var (p1, l1) = Count(model with { NLayer = 1 });
        var (p2, l2) = Count(model with { NLayer = 2 });
        return checked((p1 + (model.NLayer - 1L) * (p2 - p1), l1 + (model.NLayer - 1L) * (l2 - l1)));
    }

    /// <summary>Elements of the largest weight's packed copies (one tensor each; blocks are identical, so one block says).</summary>
    static long LargestPackedWeight(ModelConfig model) =>
        ModelWeights.Layout(model with { NLayer = 1 }).Where(p => p.Kind == ParamKind.Matrix).Max(p => PackedWeight.Length(p.Shape[0], p.Shape[1]));

    /// <summary>
    /// Elements of the packed weight copies (<see cref="ModelWeights.PackedLength"/>), from the one- and two-block
    /// layouts as <see cref="CountParameters"/> counts.
    /// </summary>
    public static long PackedWeightLength(ModelConfig model)
    {
        ArgumentNullException.ThrowIfNull(model);
        long one = ModelWeights.PackedLength(model with { NLayer = 1 }), two = ModelWeights.PackedLength(model with { NLayer = 2 });
        return checked(one + (model.NLayer - 1L) * (two - one));
    }

    /// <summary>Whether the run fits <paramref name="deviceBytes"/> of device memory and <paramref name="hostBytes"/> of host RAM.</summary>
    public bool Fits(long deviceBytes, long hostBytes, bool hostMemoryDevice) =>
        LargestTensor <= MaxTensorElements
        && (hostMemoryDevice ? RequiredBytes(true) <= deviceBytes : DeviceBytes <= deviceBytes && HostBytes <= hostBytes);

    /// <summary>The largest batch of this model that fits (0 when not even B = 1 does), searched up to <paramref name="upTo"/>.</summary>
    public static int LargestBatch(ModelConfig model, TrainConfig train, IAttentionStorage attention, long deviceBytes, long hostBytes, bool hostMemoryDevice, int upTo,
        bool fusedFfn = false, bool packedWeights = false)
    {
        ArgumentNullException.ThrowIfNull(train);
        bool Fits(int b) => TryFor(model, train with { Batch = b }, attention, fusedFfn, packedWeights) is { } e && e.Fits(deviceBytes, hostBytes, hostMemoryDevice);
        int lo = 0, hi = Math.Max(0, upTo);
        while (lo < hi)
        {
            var mid = lo + (hi - lo + 1) / 2;
            if (Fits(mid))
                lo = mid;
            else
                hi = mid - 1;
        }
        return lo;
    }

    /// <summary>Checks the run against <paramref name="device"/>'s memory and the host's available RAM.</summary>
    public void EnsureFits(Device device, TrainConfig train)
    {
        ArgumentNullException.ThrowIfNull(device);
        EnsureFits(device.MemoryBytes, Device.AvailableHostMemoryBytes(), device.IsHostMemory, device.Name, train);
    }

    /// <summary>
    /// Throws <see cref="RunTooLargeException"/> (one line: the estimate, what is available and the largest batch
    /// that fits) when the run does not fit.
    /// </summary>
    public void EnsureFits(long deviceBytes, long hostBytes, bool hostMemoryDevice, string deviceName, TrainConfig train)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (Fits(deviceBytes, hostBytes, hostMemoryDevice))
            return;
        var inv = CultureInfo.InvariantCulture;
        var best = LargestBatch(Model, train, Attention, deviceBytes, hostBytes, hostMemoryDevice, Batch - 1, FusedFfn, PackedWeights);
        var fix = best > 0
            ? string.Create(inv, $"the largest batch that fits is {best} (--batch {best}; keep the tokens per step with --grad-accum)")
            : "not even --batch 1 fits: lower --d-model, --n-layer, --seq-len or the vocabulary";
        if (LargestTensor > MaxTensorElements)
            throw new RunTooLargeException(string.Create(inv,
                $"This run does not fit: it needs {Format(RequiredBytes(hostMemoryDevice))} ({Summary()}) and its largest tensor has {LargestTensor:N0} elements, more than the {MaxTensorElements:N0} one tensor may hold; {fix}."));
        var where = hostMemoryDevice ? $"{deviceName} (host RAM available now)"
            : DeviceBytes > deviceBytes ? $"{deviceName}'s memory" : "host RAM available now (checkpoint staging)";
        var (need, have) = hostMemoryDevice ? (RequiredBytes(true), deviceBytes)
            : DeviceBytes > deviceBytes ? (DeviceBytes, deviceBytes) : (HostBytes, hostBytes);
        throw new RunTooLargeException(string.Create(inv,
            $"This run needs {Format(need)} but {where} has {Format(have)}: {Summary()}; {fix}."));
    }

    /// <summary>One line: the parts of the estimate.</summary>
    public string Summary() => string.Create(CultureInfo.InvariantCulture,
        $"parameters {Format(ParameterBytes)} ({ParameterCount:N0}), gradients {Format(GradientBytes)}, AdamW state {Format(OptimizerBytes)}, activations {Format(ActivationBytes)} (batch {Batch}), {(PackedWeights ? $"packed weights {Format(PackedWeightBytes)}, " : "")}other {Format(OtherDeviceBytes)}, host staging {Format(HostBytes)}");

    /// <summary>A table for <c>sdd train --dry-run</c>.</summary>
    public string Describe(bool hostMemoryDevice)
    {
        var rows = new (string, long)[]
        {
            ($"parameters ({ParameterCount:N0})", ParameterBytes), ("gradients", GradientBytes), ("AdamW state (m, v, decay mask)", OptimizerBytes),
            ($"activations (batch {Batch} × seq_len {Model.SeqLen})", ActivationBytes), ("trainer stats and sampler", OtherDeviceBytes),
            ("packed weights (x·Wᵀ and dY·W copies)", PackedWeightBytes), ("device total", DeviceBytes), ("host staging (checkpoint writes, batches)", HostBytes),
            (hostMemoryDevice ? "needed from host RAM" : "needed from device memory", RequiredBytes(hostMemoryDevice)),
        };
        return string.Join(Environment.NewLine, rows.Select(r => string.Create(CultureInfo.InvariantCulture, $"  {r.Item1,-46}{Format(r.Item2),12}  ({r.Item2:N0} bytes)")));
    }

    /// <summary>Bytes in binary units: 512 B, 1.50 KiB, 3.20 GiB.</summary>
    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double v = bytes;
        var u = 0;
        while (Math.Abs(v) >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0 ? string.Create(CultureInfo.InvariantCulture, $"{bytes} B") : string.Create(CultureInfo.InvariantCulture, $"{v:F2} {units[u]}");
    }

    static string Sizes(ModelConfig c, int batch) => string.Create(CultureInfo.InvariantCulture,
        $"batch {batch}, seq_len {c.SeqLen}, vocab {c.Vocab}, d_model {c.DModel}, n_layer {c.NLayer}, n_head {c.NHead}, ffn_hidden {c.FfnHidden}");
}
