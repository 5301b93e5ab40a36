import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// File writes for secrets: mode 0600 from the start, flushed to the disk before they count, and
/// old contents overwritten where they lay rather than merely unlinked.
public enum SecureFile {
    /// Writes `bytes` to a temporary file beside `path` (0600), flushes it, renames it over `path`
    /// and flushes the folder. `shreddingOld`: first overwrite the file being replaced, in place.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, shreddingOld: Bool = false) throws {
        let temporary = path + ".new"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VaultError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        do {
            try writeAll(fd, bytes, path: temporary)
            guard fsync(fd) == 0 else { throw VaultError(.io, "cannot flush \(temporary) to the disk") }
            close(fd)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        // The old file's own blocks: overwritten before the new one takes its name.
        let old = shreddingOld ? open(path, O_WRONLY | O_CLOEXEC) : -1
        defer { if old >= 0 { close(old) } }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw VaultError(.io, "cannot replace \(path): \(String(cString: strerror(errno)))")
        }
        syncFolder(of: path)
        if old >= 0 {
            var size = stat()
            if fstat(old, &size) == 0, size.st_size > 0 {
                try? writeAll(old, randomBytes(Int(size.st_size)), path: path, offset: 0)
                fsync(old)
            }
        }
    }

    /// Overwrites the file at `path` from its start with `bytes` (same inode, same blocks on a disk
    /// that writes in place) and flushes it.
    public static func overwrite(_ path: String, with bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VaultError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try writeAll(fd, bytes, path: path, offset: 0)
        guard fsync(fd) == 0 else { throw VaultError(.io, "cannot flush \(path) to the disk") }
    }

    /// Overwrites a whole file with zeros, in chunks, flushes it and removes it.
    public static func shredAndRemove(_ path: String) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            shred(descriptor: fd, path: path)
            close(fd)
        }
        unlink(path)
    }

    /// Overwrites the file open as `fd` with zeros from its start to its end, and flushes it.
    public static func shred(descriptor fd: Int32, path: String) {
        let writable = fcntl(fd, F_GETFL) & O_ACCMODE == O_RDONLY ? open("/proc/self/fd/\(fd)", O_WRONLY | O_CLOEXEC) : dup(fd)
        guard writable >= 0 else { return }
        defer { close(writable) }
        var size = stat()
        guard fstat(writable, &size) == 0 else { return }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        while offset < Int(size.st_size) {
            let count = min(chunk.count, Int(size.st_size) - offset)
            guard (try? writeAll(writable, Array(chunk[0..<count]), path: path, offset: offset)) != nil else { break }
            offset += count
        }
        fsync(writable)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String, offset: Int? = nil) throws {
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { buffer in
                offset.map { pwrite(fd, buffer.baseAddress, buffer.count, off_t($0 + written)) }
                    ?? write(fd, buffer.baseAddress, buffer.count)
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw VaultError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += result
        }
    }

    public static func syncFolder(of path: String) {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    static func randomBytes(_ count: Int) -> [UInt8] { KeyFile.randomBytes(count) }
}
