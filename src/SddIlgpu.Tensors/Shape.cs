// The shape of a tensor: up to four dimensions, row-major, the last one contiguous.
// Shapes use the model's vocabulary: (B, T, C), (B, T, NH, HS), (V, C), ...
namespace SddIlgpu.Tensors;

/// <summary>A row-major tensor shape of rank 1 to 4.</summary>
public readonly record struct Shape
{
    readonly int d0, d1, d2, d3;

    /// <summary>Number of dimensions (1..4).</summary>
    public int Rank { get; }

    public Shape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        if (dims.Length is < 1 or > 4)
            throw new ArgumentException($"A tensor has 1 to 4 dimensions; got {dims.Length}.", nameof(dims));
        foreach (var d in dims)
            if (d <= 0)
                throw new ArgumentException($"Every dimension must be positive; got ({string.Join(", ", dims)}).", nameof(dims));
        Rank = dims.Length;
        d0 = dims[0];
        d1 = dims.Length > 1 ? dims[1] : 1;
        d2 = dims.Length > 2 ? dims[2] : 1;
        d3 = dims.Length > 3 ? dims[3] : 1;
    }

    public int this[int axis] => axis switch
    {
        _ when axis < 0 && -axis <= Rank => this[Rank + axis],
        0 when Rank > 0 => d0,
        1 when Rank > 1 => d1,
        2 when Rank > 2 => d2,
        3 when Rank > 3 => d3,
        _ => throw new ArgumentOutOfRangeException(nameof(axis), $"Axis {axis} does not exist in a rank-{Rank} shape {this}."),
    };

    /// <summary>Number of elements.</summary>
    public long Length => (long)d0 * d1 * d2 * d3;

    /// <summary>Size of the last axis.</summary>
    public int Last => this[Rank - 1];

    /// <summary>Product of all axes but the last: the number of rows.</summary>
    public long Rows => Length / Last;

    public int[] ToArray()
    {
        var a = new int[Rank];
        for (var i = 0; i < Rank; i++)
            a[i] = this[i];
        return a;
    }

    public override string ToString() => "(" + string.Join(", ", ToArray()) + ")";

    public static implicit operator Shape(int n) => new(n);
    public static implicit operator Shape((int, int) s) => new(s.Item1, s.Item2);
    public static implicit operator Shape((int, int, int) s) => new(s.Item1, s.Item2, s.Item3);
    public static implicit operator Shape((int, int, int, int) s) => new(s.Item1, s.Item2, s.Item3, s.Item4);
}
