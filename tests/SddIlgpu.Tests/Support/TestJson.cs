// The JSON types the tests read from fixtures, through source generation: the test project runs with
// reflection-based System.Text.Json disabled (see the .csproj), as a trimmed or file-based app does.
using System.Text.Json.Serialization;

namespace SddIlgpu.Tests.Support;

[JsonSerializable(typeof(double[]))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class TestJson : JsonSerializerContext;
