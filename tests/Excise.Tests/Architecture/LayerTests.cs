using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Excise.Tests.Architecture;

/// <summary>
/// The library's folders form layers, and data flows one way through them: a folder may use the folders below it,
/// never one above, and no two folders use each other. Read from the compiled IL (signatures, attributes and method
/// bodies), so a dependency cannot hide in a lambda or a fully qualified name. docs/architecture.md draws the same picture.
/// </summary>
public sealed class LayerTests
{
    /// <summary>Bottom to top; folders on one line are peers and may not use each other.</summary>
    public static readonly IReadOnlyList<string[]> Layers =
    [
        ["Excise", "Torch", "Serialization", "Configuration", "Distributed"],
        ["Imaging", "Text"],
        ["Data"],
        ["Models"],
        ["Diffusion"],
        ["Pipelines"],
        ["Projection"],
        ["Training"],
        ["Attacks"],
        ["Evaluation"],
        ["Experiment", "Benchmarking"],
        ["Reporting"],
    ];

    /// <summary>The library as built, or another build of it (EXCISE_LAYER_ASSEMBLY=…/Excise.dll) to see what an older layout breaks.</summary>
    static string LibraryPath => Environment.GetEnvironmentVariable("EXCISE_LAYER_ASSEMBLY") is { Length: > 0 } other
        ? other : typeof(Excise.Training.RunDirectory).Assembly.Location;

    [Fact]
    public void No_folder_uses_one_above_it_or_a_peer()
    {
        var violations = Violations(Dependencies(LibraryPath));
        Assert.True(violations.Count == 0, "Layering broken:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void Every_folder_of_the_library_has_a_layer()
    {
        var folders = Dependencies(LibraryPath).Keys.Select(k => k.From).Distinct();
        var known = Layers.SelectMany(l => l).ToHashSet();
        Assert.DoesNotContain(folders, f => !known.Contains(f));
    }

    [Fact]
    public void The_test_catches_a_dependency_upward_and_a_cycle()
    {
        // A lower folder using a higher one, and two peers using each other, as found in the layout before these rules.
        var edges = new Dictionary<(string From, string To), string>
        {
            [("Projection", "Training")] = "ConceptProjector → Excise.Training.ITrainingHook",
            [("Imaging", "Text")] = "a → b",
            [("Training", "Projection")] = "Trainer → ConceptProjector",
        };
        var violations = Violations(edges);
        Assert.Equal(2, violations.Count);
        Assert.Contains(violations, v => v.StartsWith("Projection uses Training (a layer above)", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.StartsWith("Imaging uses Text (a peer)", StringComparison.Ordinal));
    }

    static List<string> Violations(IReadOnlyDictionary<(string From, string To), string> edges)
    {
        static int Rank(string folder)
        {
            for (int r = 0; r < Layers.Count; r++) if (Layers[r].Contains(folder)) return r;
            return int.MaxValue; // a folder without a layer: every use of it is upward (and the test above names it)
        }
        var violations = new List<string>();
        foreach (var ((from, to), example) in edges.OrderBy(e => e.Key.From).ThenBy(e => e.Key.To))
        {
            int a = Rank(from), b = Rank(to);
            if (b > a) violations.Add($"{from} uses {to} (a layer above), e.g. {example}");
            else if (a == b) violations.Add($"{from} uses {to} (a peer), e.g. {example}");
        }
        return violations;
    }

    /// <summary>Every folder-to-folder use in the assembly, with one example each ("Type.Member → used type").</summary>
    static Dictionary<(string From, string To), string> Dependencies(string assemblyPath)
    {
        var edges = new Dictionary<(string From, string To), string>();
        using var assembly = AssemblyDefinition.ReadAssembly(assemblyPath);
        foreach (var type in assembly.MainModule.GetTypes())
        {
            var from = Folder(type);
            if (from is null) continue;
            void Use(TypeReference? used, string where)
            {
                foreach (var reference in Expand(used))
                    if (Folder(reference) is { } to && to != from)
                        edges.TryAdd((from, to), $"{where} → {reference.FullName}");
            }
            Use(type.BaseType, type.FullName);
            foreach (var i in type.Interfaces) Use(i.InterfaceType, type.FullName);
            foreach (var a in type.CustomAttributes) Use(a.AttributeType, type.FullName);
            foreach (var f in type.Fields) Use(f.FieldType, $"{type.FullName}.{f.Name}");
            foreach (var p in type.Properties) Use(p.PropertyType, $"{type.FullName}.{p.Name}");
            foreach (var m in type.Methods)
            {
                var where = $"{type.FullName}.{m.Name}";
                Use(m.ReturnType, where);
                foreach (var p in m.Parameters) Use(p.ParameterType, where);
                foreach (var a in m.CustomAttributes) Use(a.AttributeType, where);
                if (!m.HasBody) continue;
                foreach (var v in m.Body.Variables) Use(v.VariableType, where);
                foreach (var instruction in m.Body.Instructions)
                    switch (instruction.Operand)
                    {
                        case TypeReference t: Use(t, where); break;
                        case MethodReference called:
                            Use(called.DeclaringType, where);
                            Use(called.ReturnType, where);
                            foreach (var p in called.Parameters) Use(p.ParameterType, where);
                            if (called is GenericInstanceMethod g) foreach (var arg in g.GenericArguments) Use(arg, where);
                            break;
                        case FieldReference field: Use(field.DeclaringType, where); Use(field.FieldType, where); break;
                    }
            }
        }
        return edges;
    }

    /// <summary>A type and what it is built from: element types, generic arguments.</summary>
    static IEnumerable<TypeReference> Expand(TypeReference? type)
    {
        if (type is null) yield break;
        yield return type;
        if (type is TypeSpecification spec) foreach (var inner in Expand(spec.ElementType)) yield return inner;
        if (type is GenericInstanceType generic) foreach (var arg in generic.GenericArguments) foreach (var inner in Expand(arg)) yield return inner;
    }

    /// <summary>The library folder a type belongs to ("Excise.Evaluation.Judges.X" → "Evaluation"; the root namespace → "Excise"); null outside the library.</summary>
    static string? Folder(TypeReference type)
    {
        while (type.DeclaringType is not null) type = type.DeclaringType;
        if (type is TypeSpecification) return null;
        var ns = type.Namespace;
        if (ns == "Excise") return "Excise";
        if (!ns.StartsWith("Excise.", StringComparison.Ordinal)) return null;
        return ns["Excise.".Length..].Split('.')[0];
    }
}
