// The plain fully-connected layer without bias: y = x·Wᵀ with W stored (out, in) as in PyTorch.
// Backward: dW += dYᵀ·X, then dX = dY·W (overwritten or accumulated) (the gradient contract of Ops/IOps.cs).
// x·Wᵀ and dY·W read W's packed copies when the device keeps them current (IWeightPackingOps), W itself otherwise.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Layers;

/// <summary>y (R, Out) = x (R, In) · Wᵀ, W (Out, In).</summary>
public sealed class Linear
{
    readonly OpSet ops;

    public Linear(OpSet ops, Parameter weight)
    {
        ArgumentNullException.ThrowIfNull(ops);
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Shape.Rank != 2)
            throw new ArgumentException($"Linear weight {weight.Name} must be (out, in); got {weight.Shape}.");
        this.ops = ops;
        Weight = weight;
    }

    public Parameter Weight { get; }
    public int In => Weight.Shape[1];
    public int Out => Weight.Shape[0];

    /// <summary>y = x·Wᵀ with y dense (R, Out).</summary>
    public void Forward(Tensor x, Tensor y) => Forward(x, y, new MatrixLayout(Out));

    /// <summary>y = x·Wᵀ where row r of y starts at <c>ly.Offset + r·ly.Ld</c> (e.g. one half of a (R, 2F) buffer).</summary>
    public void Forward(Tensor x, Tensor y, in MatrixLayout ly)
    {
        var rows = Rows(x);
        if (Current is { } packed)
            ops.WeightPacking!.Forward(x, packed, y, ly);
        else
            ops.Gemm.Gemm(new GemmSpec(rows, Out, In, TransB: true), x, new MatrixLayout(In), Weight.Value, new MatrixLayout(In), y, ly);
    }

    /// <summary>dX (R, In) = dY·W, overwritten or (<paramref name="accumulate"/>) added; dW += dYᵀ·x.</summary>
    public void Backward(Tensor dY, Tensor x, Tensor dX, bool accumulate = false) =>
        Backward(dY, new MatrixLayout(Out), x, dX, accumulate);

    /// <summary>As <see cref="Backward(Tensor, Tensor, Tensor, bool)"/> with dY read through layout <paramref name="ldY"/>.</summary>
    public void Backward(Tensor dY, in MatrixLayout ldY, Tensor x, Tensor dX, bool accumulate = false)
    {
        dX.ExpectLength((long)Rows(x) * In, $"{Weight.Name} dX");
        // dW first, while dY (just written by the op before) is still in cache: it reads dY through its stride, one
        // line per k, where dX reads it row by row. Measured 1 % of baby-gpt's step (perf.md, issue 14 session 5).
        BackwardWeight(dY, ldY, x);
        BackwardInput(dY, ldY, dX, accumulate);
    }

    /// <summary>
    /// The first half of Backward: dW += dYᵀ·x, dY (R, Out) through <paramref name="ldY"/>. Layers whose projections
    /// share an input (q, k, v; up, gate) run every weight gradient before any input gradient, so x and the fresh dYs
    /// are read while they are still in cache.
    /// </summary>
    public void BackwardWeight(Tensor dY, in MatrixLayout ldY, Tensor x) =>
        ops.Gemm.Gemm(new GemmSpec(Out, In, Rows(x), TransA: true, Beta: 1f), dY, ldY, x, new MatrixLayout(In), Weight.Grad, new MatrixLayout(In));

    /// <summary>
    /// <see cref="BackwardWeight"/> of linears that read the same x (R, In): q, k and v; up and gate. One grouped GEMM
    /// (<see cref="IGemmOps.GemmSharedB"/>) prepares x once for every dW += dYᵀ·x (the managed GEMM packs it once
    /// instead of once per projection); each dW gets the bits its own BackwardWeight gives.
    /// </summary>
    /// <exception cref="ArgumentException">The linears differ in In or in their ops, or x is not whole rows of In.</exception>
    public static void BackwardWeights(Tensor x, params (Linear Linear, Tensor DY, MatrixLayout LdY)[] group)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(group);
        if (group.Length == 0)
            return;
        var first = group[0].Linear;
        var members = new GemmMember[group.Length];
        for (var g = 0; g < group.Length; g++)
        {
            var (linear, dY, ldY) = group[g];
            if (linear.In != first.In || linear.ops != first.ops)
                throw new ArgumentException($"{linear.Weight.Name} cannot share a weight-gradient GEMM with {first.Weight.Name}: inputs {linear.In} and {first.In}, or another device.");
            members[g] = new GemmMember(linear.Out, dY, ldY, linear.Weight.Grad, new MatrixLayout(linear.In));
        }
        first.ops.Gemm.GemmSharedB(new GemmSpec(0, first.In, first.Rows(x), TransA: true, Beta: 1f), members, x, new MatrixLayout(first.In));
    }

    /// <summary>The second half of Backward: dX (R, In) = dY·W, overwritten or (<paramref name="accumulate"/>) added.</summary>
    public void BackwardInput(Tensor dY, in MatrixLayout ldY, Tensor dX, bool accumulate)
    {
        var rows = Rows(dX);
        if (Current is { } packed)
            ops.WeightPacking!.BackwardInput(dY, ldY, packed, dX, accumulate);
        else
            ops.Gemm.Gemm(new GemmSpec(rows, In, Out, Beta: accumulate ? 1f : 0f), dY, ldY, Weight.Value, new MatrixLayout(In), dX, new MatrixLayout(In));
    }

    /// <summary>
    /// The weight's packed copies when they are current and this layer's ops can use them (the same bits as the GEMM
    /// on W; AdamW refreshes them each step, see <see cref="ModelWeights.Packed"/>), else null.
    /// </summary>
    PackedWeight? Current => Weight.Packed is { Current: true } p && ops.WeightPacking is not null ? p : null;

    int Rows(Tensor x)
    {
        if (x.Length % In != 0)
            throw new ArgumentException($"{Weight.Name}: input {x} is not a whole number of rows of {In}.");
        return checked((int)(x.Length / In));
    }
}
