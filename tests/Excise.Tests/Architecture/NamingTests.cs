using System.Reflection;

namespace Excise.Tests.Architecture;

/// <summary>
/// A test's name is the sentence it proves, words joined by underscores (A_mistyped_option_is_a_usage_error_that_names_it),
/// so a failing test reads as the claim that broke. The build's naming rules (.editorconfig) cannot say this: to them
/// UpdateProjectionIsCertified and Update_projection_is_certified are both PascalCase.
/// </summary>
public sealed class NamingTests
{
    [Fact]
    public void Every_test_is_named_as_a_sentence_with_underscores()
    {
        var tests = TestMethods(typeof(NamingTests).Assembly).ToList();
        Assert.Contains(tests, t => t.Method == nameof(Every_test_is_named_as_a_sentence_with_underscores)); // the scan sees tests at all
        var offenders = Offenders(tests);
        Assert.True(offenders.Count == 0,
            $"{offenders.Count} test name(s) are not sentences; join the words with underscores (Update_projection_is_certified):\n"
            + string.Join("\n", offenders));
    }

    [Fact]
    public void The_test_catches_a_PascalCase_name_and_passes_a_sentence()
    {
        var offenders = Offenders(
        [
            ("SelectiveArmsTests", "UpdateProjectionIsCertifiedAndTheStandardArmIsNot"),
            ("ExitCodeTests", "A_mistyped_option_is_a_usage_error_that_names_it"),
            ("ImagingTests", "PadTo_centres_the_image_on_black"),
        ]);
        Assert.Equal(["SelectiveArmsTests.UpdateProjectionIsCertifiedAndTheStandardArmIsNot"], offenders);
    }

    static List<string> Offenders(IEnumerable<(string Type, string Method)> tests) =>
        tests.Where(t => !t.Method.Contains('_')).Select(t => $"{t.Type}.{t.Method}").Order(StringComparer.Ordinal).ToList();

    /// <summary>Every [Fact] and [Theory] (and the attributes derived from them, such as [TmpfsFact]) in the assembly.</summary>
    static IEnumerable<(string Type, string Method)> TestMethods(Assembly assembly) =>
        from type in assembly.GetTypes()
        from method in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
        where method.GetCustomAttributes<FactAttribute>(inherit: true).Any()
        select (type.FullName ?? type.Name, method.Name);
}
