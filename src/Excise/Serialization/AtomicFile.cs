using System.Runtime.InteropServices;

namespace Excise.Serialization;

/// <summary>
/// Writes a file so that readers see either the old contents or the complete new contents, never a torn
/// file: write to a temporary sibling, flush it to disk (fsync), rename it over the target, then fsync the
/// directory so the rename itself survives a power cut (see <see cref="SyncDirectory"/>).
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
            SyncDirectory(dir);
        }
        catch (IOException e)
        {
            TryDelete(temp);
            throw new IOException($"Could not write {full}: {Describe(e)}. Any previous version of the file is unchanged.", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, s => { using var w = new StreamWriter(s, leaveOpen: true); w.Write(text); });

    /// <summary>
    /// True when the exception (or one it wraps) reports a full disk or an exceeded quota: ENOSPC/EDQUOT on Unix,
    /// where .NET puts the errno in HResult, or ERROR_DISK_FULL/ERROR_HANDLE_DISK_FULL on Windows.
    /// </summary>
    public static bool IsDiskFull(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            int code = x.HResult & 0xFFFF;
            bool windows = OperatingSystem.IsWindows();
            if (x is IOException && (windows ? code is 0x70 or 0x27 : x.HResult is Enospc or EdquotLinux)) return true;
        }
        return false;
    }

    const int Enospc = 28, EdquotLinux = 122;

    /// <summary>The exception's message, prefixed with "the disk is full" when that is the cause.</summary>
    public static string Describe(IOException e) => IsDiskFull(e) && !e.Message.StartsWith("the disk is full") ? $"the disk is full ({e.Message})" : e.Message;

    /// <summary>
    /// Makes a directory's entries (a rename, a new file) durable. .NET has no API for this; on Linux and macOS it is
    /// open(dir, O_RDONLY) + fsync + close through libc. File systems that cannot fsync a directory (EINVAL, some network
    /// and FUSE mounts) are ignored: their renames are as durable as they get. On Windows NTFS journals the rename and
    /// there is no directory handle to flush, so this does nothing.
    /// </summary>
    public static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd;
        try { fd = Open(directory, 0 /* O_RDONLY */); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return; }
        if (fd < 0) return;
        try
        {
            if (Fsync(fd) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is Enospc or EdquotLinux or 5 /* EIO */)
                    throw new IOException($"fsync of directory {directory} failed (errno {errno})", errno);
            }
        }
        finally { Close(fd); }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    static extern int Fsync(int fd);
    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    static extern int Close(int fd);

    static void TryDelete(string path)
    {
        try { if (File.Exists(path)) File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
