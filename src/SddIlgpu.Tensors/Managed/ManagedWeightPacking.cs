// Linear weights kept packed for ManagedGemm (Ops/IOps.cs IWeightPackingOps, issue 14): each W (Out, In) has a
// copy in the panel order of y = x·Wᵀ ([Out/NR][In][NR]) and one in that of dX = dY·W ([In/NR][Out][NR]), exactly
// what the GEMM's own packing pass writes for those B operands. AdamW refreshes them in its pass over the weights:
// a weight's rows are updated NR at a time and packed while they are still in L1, so the step's products skip the
// two packing passes over every weight, which read W back from memory (baby-gpt: ~43 MB each, ~3.5 % of the step;
// docs/perf.md, issue 14 session 11). The copies are written with non-temporal stores: the next step reads them,
// long after they would have left the caches. The update itself is ManagedOptimizer's, element for element.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed unsafe class ManagedWeightPacking(Device device, ManagedGemm gemm) : IWeightPackingOps
{
    /// <summary>Elements of one AdamW work item outside the packed weights (a weight's item is NR rows of it).</summary>
    const int GapChunk = 1 << 14;

    /// <summary>Per-worker staging for a forward panel (In·NR floats), streamed from there to the copy.</summary>
    readonly PinnedBuffer?[] stage = new PinnedBuffer?[ManagedSimd.Workers];

    /// <summary>Checks every pack against a fresh one before a product uses it (tests turn this on).</summary>
    internal static bool Verify { get; set; } = Environment.GetEnvironmentVariable("SDD_VERIFY_PACKED") == "1";

    public PackedWeight Create(Tensor weight, Tensor storage, string name)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(storage);
        if (weight.Shape.Rank != 2)
            throw new ArgumentException($"Packed weight {name}: W must be (out, in); got {weight.Shape}.");
        storage.ExpectLength(PackedWeight.Length(weight.Shape[0], weight.Shape[1]), $"packed copies of {name}");
        if (gemm.PanelWidth > PackedWeight.MaxPanel)
            throw new InvalidOperationException($"The GEMM's {gemm.PanelWidth}-column panels are wider than PackedWeight.MaxPanel.");
        return new PackedWeight(weight, storage, name);
    }

    public void Pack(PackedWeight weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        device.ThrowIfDisposed();
        weight.Current = false;
        var nr = gemm.PanelWidth;
        var panels = (weight.Out + nr - 1) / nr;
        float* w = Ptr(weight.Weight), forward = Ptr(weight.Storage), backward = forward + ForwardLength(weight);
        ManagedSimd.For(panels, ManagedSimd.Workers, 4L * nr * weight.In, (p0, p1) =>
        {
            gemm.PackWeightForward(w, weight.Out, weight.In, p0, p1, forward);
            gemm.PackWeightBackward(w, weight.Out, weight.In, p0 * nr, Math.Min(weight.Out, p1 * nr), backward);
        });
        GC.KeepAlive(weight);
        weight.Current = true;
    }

    public void AdamW(in AdamWStep step, Tensor param, Tensor grad, Tensor m, Tensor v, Tensor decayMask, Tensor gradSumSquares,
        IReadOnlyList<PackedWeight> packed)
    {
        ArgumentNullException.ThrowIfNull(packed);
        var scale = ManagedOptimizer.Begin(device, step, param, grad, m, v, decayMask, gradSumSquares);
        var items = Items(param, packed);
        foreach (var w in packed)
            w.Current = false;
        var s = step;
        var nr = gemm.PanelWidth;
        var widest = packed.Count == 0 ? 0 : packed.Max(w => w.In);
        for (var worker = 0; worker < stage.Length; worker++)
            if (stage[worker] is not { } b || b.Length < widest * nr)
                stage[worker] = new PinnedBuffer(widest * nr);
        var at = new Pointers(Ptr(param), Ptr(grad), Ptr(m), Ptr(v), Ptr(decayMask));
        ManagedSimd.ForChunks(items.Length, items.Length, GapChunk, (worker, i0, i1) =>
            UpdateAndPack(s, scale, items, i0, i1, at, packed, stage[worker]!.Pointer));
        GC.KeepAlive(param);
        GC.KeepAlive(grad);
        GC.KeepAlive(m);
        GC.KeepAlive(v);
        GC.KeepAlive(decayMask);
        foreach (var w in packed)
            w.Current = true;
    }

    /// <summary>AdamW's items [i0, i1): each range updated, then a weight's rows packed while they are in cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void UpdateAndPack(in AdamWStep s, float scale, (int Start, int Length, int Index, int Panel)[] items, int i0, int i1, in Pointers at,
        IReadOnlyList<PackedWeight> packed, float* staged)
    {
        var nr = gemm.PanelWidth;
        for (var i = i0; i < i1; i++)
        {
            var (start, length, index, panel) = items[i];
            ManagedOptimizer.Update(s, scale, new Span<float>(at.P + start, length), new ReadOnlySpan<float>(at.G + start, length),
                new Span<float>(at.M + start, length), new Span<float>(at.V + start, length), new ReadOnlySpan<float>(at.Mask + start, length));
            if (index < 0)
                continue;
            var w = packed[index];
            float* forward = Ptr(w.Storage), backward = forward + ForwardLength(w), rows = Ptr(w.Weight);
            gemm.PackWeightForward(rows, w.Out, w.In, panel, panel + 1, forward, staged);
            gemm.PackWeightBackward(rows, w.Out, w.In, panel * nr, Math.Min(w.Out, panel * nr + nr), backward, streamed: true);
        }
        if (Sse.IsSupported)
            Sse.StoreFence(); // the streamed copies are visible before the join
    }

    /// <summary>The flat arenas AdamW walks: parameters, gradients, both moments and the decay mask.</summary>
    readonly struct Pointers(float* p, float* g, float* m, float* v, float* mask)
    {
        public readonly float* P = p, G = g, M = m, V = v, Mask = mask;
    }

    public void Forward(Tensor x, PackedWeight weight, Tensor y, in MatrixLayout ly)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        CheckCurrent(weight);
        var rows = Rows(x, weight.In, weight.Name);
        gemm.GemmPackedB(new GemmSpec(rows, weight.Out, weight.In, TransB: true), x, new MatrixLayout(weight.In), weight.Weight,
            new MatrixLayout(weight.In), Ptr(weight.Storage), y, ly);
        GC.KeepAlive(weight);
    }

    public void BackwardInput(Tensor dY, in MatrixLayout ldY, PackedWeight weight, Tensor dX, bool accumulate)
    {
        ArgumentNullException.ThrowIfNull(dX);
        ArgumentNullException.ThrowIfNull(weight);
        CheckCurrent(weight);
        var rows = Rows(dX, weight.In, weight.Name);
        gemm.GemmPackedB(new GemmSpec(rows, weight.In, weight.Out, Beta: accumulate ? 1f : 0f), dY, ldY, weight.Weight,
            new MatrixLayout(weight.In), Ptr(weight.Storage) + ForwardLength(weight), dX, new MatrixLayout(weight.In));
        GC.KeepAlive(weight);
    }

    /// <summary>
    /// AdamW's work items over [0, param.Length): every packed weight as items of NR rows (index = the weight, panel =
    /// the row group), and the ranges between them in chunks of <see cref="GapChunk"/> (index −1). Element offsets
    /// are relative to param.
    /// </summary>
    (int Start, int Length, int Index, int Panel)[] Items(Tensor param, IReadOnlyList<PackedWeight> packed)
    {
        var nr = gemm.PanelWidth;
        var order = new int[packed.Count];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
            var w = packed[i].Weight;
            if (w.Arena != param.Arena || w.Offset < param.Offset || w.Offset + w.Length > param.Offset + param.Length)
                throw new ArgumentException($"AdamW: packed weight {packed[i].Name} is not inside {param.Name}.");
        }
        Array.Sort(order, (a, b) => packed[a].Weight.Offset.CompareTo(packed[b].Weight.Offset));
        var items = new List<(int, int, int, int)>();
        void Gap(long from, long to)
        {
            for (var s = from; s < to; s += GapChunk)
                items.Add(((int)s, (int)Math.Min(GapChunk, to - s), -1, 0));
        }
        long at = 0;
        foreach (var i in order)
        {
            var w = packed[i];
            var start = w.Weight.Offset - param.Offset;
            if (start < at)
                throw new ArgumentException($"AdamW: packed weight {w.Name} overlaps another.");
            Gap(at, start);
            for (var p = 0; p * nr < w.Out; p++)
                items.Add(((int)(start + (long)p * nr * w.In), Math.Min(nr, w.Out - p * nr) * w.In, i, p));
            at = start + w.Weight.Length;
        }
        Gap(at, param.Length);
        return [.. items];
    }

    /// <summary>Elements of the x·Wᵀ copy with this GEMM's panels; the dY·W copy follows it.</summary>
    long ForwardLength(PackedWeight w) => (long)((w.Out + gemm.PanelWidth - 1) / gemm.PanelWidth) * gemm.PanelWidth * w.In;

    void CheckCurrent(PackedWeight weight)
    {
        if (!weight.Current)
            throw new InvalidOperationException($"Packed weight {weight.Name} is not current: pack it, or run the product on W itself.");
        if (!Verify)
            return;
        var fresh = new float[weight.Storage.Length];
        var nr = gemm.PanelWidth;
        fixed (float* f = fresh)
        {
            float* w = Ptr(weight.Weight), forward = f, backward = f + ForwardLength(weight);
            var panels = (weight.Out + nr - 1) / nr;
            gemm.PackWeightForward(w, weight.Out, weight.In, 0, panels, forward);
            gemm.PackWeightBackward(w, weight.Out, weight.In, 0, weight.Out, backward);
            var used = ForwardLength(weight) + (long)(weight.In + nr - 1) / nr * nr * weight.Out;
            if (!new ReadOnlySpan<float>(f, (int)used).SequenceEqual(weight.Storage.HostSpan()[..(int)used]))
                throw new InvalidOperationException(
                    $"Packed weight {weight.Name} differs from W: W was written after its last pack without PackedWeight.Invalidate().");
        }
    }

    static int Rows(Tensor x, int width, string name)
    {
        if (x.Length % width != 0)
            throw new ArgumentException($"{name}: {x} is not a whole number of rows of {width}.");
        return checked((int)(x.Length / width));
    }

    static float* Ptr(Tensor t)
    {
        fixed (float* p = t.HostSpan())
            return p; // arena memory is ILGPU's unmanaged CPU buffer: the pointer stays valid
    }
}
