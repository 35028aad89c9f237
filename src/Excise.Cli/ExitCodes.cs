namespace Excise.Cli;

/// <summary>What <c>excise</c> exits with (README, "What the CLI does").</summary>
static class ExitCodes
{
    public const int Done = 0;
    /// <summary>The job could not be done: bad or corrupt input, a missing file, a diverged run (the message says which).</summary>
    public const int Failed = 1;
    /// <summary>The command line must be fixed: an unknown command or option, a value out of range, NaN or infinite.</summary>
    public const int Usage = 2;
    /// <summary><c>verify</c> ran and the certificate failed.</summary>
    public const int CertificateFailed = 3;
}
