using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Excise.Tests.Architecture;

/// <summary>
/// A public method nobody calls is code a reader has to understand for nothing, and it rots untested. Every public
/// method of the library is called by the library, the CLI or the tests (read from the compiled IL, delegates included).
/// </summary>
public sealed class UsageTests
{
    static string LibraryPath => typeof(Excise.Training.RunDirectory).Assembly.Location;
    static string TestsPath => typeof(UsageTests).Assembly.Location;
    static string CliPath => RepositoryPaths.Cli + ".dll";

    [Fact]
    public void Every_public_method_of_the_library_is_called_somewhere()
    {
        var unused = UnusedPublicMethods(LibraryPath, [LibraryPath, CliPath, TestsPath]);
        Assert.True(unused.Count == 0, "Public methods nobody calls (remove them, or make them private if only their own type needs them):\n"
                                       + string.Join("\n", unused));
    }

    [Fact]
    public void The_test_finds_a_method_only_a_caller_left_out_calls()
    {
        // With the library alone as the caller, a method only the CLI calls (the share sweep) is reported as unused, and
        // one the library calls itself (the training job, called by the experiment) is not.
        var unusedByTheLibrary = UnusedPublicMethods(LibraryPath, [LibraryPath]);
        Assert.Contains(unusedByTheLibrary, m => m.Contains("Excise.Experiment.ShareSweep::Run(", StringComparison.Ordinal));
        Assert.DoesNotContain(unusedByTheLibrary, m => m.Contains("Excise.Training.TrainingJob::Run(", StringComparison.Ordinal));
    }

    static List<string> UnusedPublicMethods(string libraryPath, IReadOnlyList<string> callerPaths)
    {
        var called = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in callerPaths.Distinct())
        {
            using var caller = AssemblyDefinition.ReadAssembly(path);
            foreach (var type in caller.MainModule.GetTypes())
                foreach (var method in type.Methods.Where(m => m.HasBody))
                    foreach (var instruction in method.Body.Instructions)
                        if (instruction.Operand is MethodReference reference)
                            called.Add(Key(reference.GetElementMethod()));
        }
        using var library = AssemblyDefinition.ReadAssembly(libraryPath);
        return library.MainModule.GetTypes()
            .Where(IsVisible)
            .SelectMany(type => type.Methods)
            .Where(m => m.IsPublic && !m.IsConstructor && !m.IsSpecialName && !m.IsVirtual && !IsGenerated(m))
            .Where(m => !called.Contains(Key(m)))
            .Select(m => m.FullName)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    static bool IsVisible(TypeDefinition type)
    {
        for (var t = type; t is not null; t = t.DeclaringType)
            if (!(t.IsPublic || t.IsNestedPublic)) return false;
        return true;
    }

    /// <summary>What records and the compiler write (Deconstruct, <c>&lt;Clone&gt;$</c>, PrintMembers), not code a person wrote.</summary>
    static bool IsGenerated(MethodDefinition method) =>
        method.Name is "Deconstruct" or "PrintMembers" || method.Name.StartsWith('<')
        || method.CustomAttributes.Any(a => a.AttributeType.Name == "CompilerGeneratedAttribute");

    /// <summary>A method's identity across assemblies: its declaring type, name and parameter types (generic definitions, not instances).</summary>
    static string Key(MethodReference method) =>
        $"{method.DeclaringType.GetElementType().FullName}::{method.Name}({string.Join(",", method.Parameters.Select(p => p.ParameterType.FullName))})`{method.GenericParameters.Count}";
}
