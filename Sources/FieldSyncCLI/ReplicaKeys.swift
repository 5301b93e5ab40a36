import FieldSyncCore
import FieldSyncStore
import FieldSyncVault
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How a command gets an encrypted replica's data key: a passphrase file (`--passphrase-file`, else
/// `$FIELDSYNC_PASSPHRASE_FILE`), else a running unlock agent, else the terminal. Without any of
/// them the command fails at once; it never waits on a prompt no one can answer.
struct ReplicaKeys {
    var store: String
    var passphraseFile: String?

    var keyFilePath: String { KeyFile.path(forStore: store) }
    var isEncrypted: Bool { FileManager.default.fileExists(atPath: keyFilePath) }

    /// The explicit passphrase file: the option, else the environment's (a path, never a passphrase).
    var explicitPassphraseFile: String? {
        if let passphraseFile { return passphraseFile }
        if let fromEnvironment = ProcessInfo.processInfo.environment["FIELDSYNC_PASSPHRASE_FILE"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return nil
    }

    /// The data key, or nil for a plaintext replica. The duress passphrase switches to the decoy
    /// here, silently, and the decoy's key is returned.
    func dataKey() throws -> StoreKey? {
        guard isEncrypted else { return nil }
        Self.hardenProcess()
        let file = try KeyFile.read(at: keyFilePath)
        if explicitPassphraseFile == nil, let key = KeyAgent.fetchKey(for: file) { return key }
        return try unlock(file, passphrase: try passphrase(prompt: "Passphrase for \(store): ")).key
    }

    /// The data key `passphrase` opens, the slot it opened, and the key file as it is afterwards
    /// (the duress passphrase rewrites it).
    func unlock(_ file: KeyFile, passphrase: String) throws -> (key: StoreKey, slot: Int, file: KeyFile) {
        Self.hardenProcess()
        let kek = try file.keyEncryptionKey(passphrase)
        switch file.open(with: kek) {
        case .replica(let key, let slot): return (key, slot, file)
        case .duress(let decoy, let name, let slot):
            let switched = try DuressSwitch(store: store, keyFile: file).engage(decoyKey: decoy, decoyName: name, slot: slot, kek: kek)
            return (decoy, slot, switched)
        case nil:
            throw VaultError(.wrongPassphrase, "wrong passphrase for \(store) (or its key file was altered); nothing was changed")
        }
    }

    /// The current passphrase: from the passphrase file, else asked once on the terminal.
    func passphrase(prompt: String) throws -> String {
        if let file = explicitPassphraseFile { return try Self.read(passphraseFile: file) }
        guard let typed = try Terminal.ask(prompt) else {
            throw VaultError(
                .noPassphrase,
                "\(store) is encrypted and locked, and there is no terminal to ask on: run `fieldsync unlock`, or give --passphrase-file FILE"
            )
        }
        return typed
    }

    /// A new passphrase: from `file`, else asked twice on the terminal.
    static func newPassphrase(file: String?, what: String = "New passphrase") throws -> String {
        if let file { return try read(passphraseFile: file) }
        guard let first = try Terminal.ask("\(what): ") else {
            throw VaultError(.noPassphrase, "no terminal to ask for the new passphrase on: give it in a file (--new-passphrase-file FILE)")
        }
        guard let second = try Terminal.ask("\(what), again: ") else { throw VaultError(.noPassphrase, "no terminal to ask on") }
        guard first == second else { throw VaultError(.invalid, "the two passphrases differ; nothing was changed") }
        return try checked(first)
    }

    /// The first line of `path`, without its line end.
    static func read(passphraseFile path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VaultError(.invalid, "cannot read the passphrase file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return try checked(line.hasSuffix("\r") ? String(line.dropLast()) : line)
    }

    static func checked(_ passphrase: String) throws -> String {
        guard !passphrase.isEmpty else { throw VaultError(.invalid, "the passphrase is empty") }
        return passphrase
    }

    /// A process that holds a key is not dumpable: no core file carries it.
    static func hardenProcess() { KeyAgent.makeProcessNondumpable() }
}

/// Prompts on the controlling terminal with echo off, only when standard input is a terminal.
enum Terminal {
    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 }

    /// The line typed, or nil when there is no terminal.
    static func ask(_ prompt: String) throws -> String? {
        guard isInteractive else { return nil }
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var saved = termios()
        let hasTermios = tcgetattr(fd, &saved) == 0
        if hasTermios {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(fd, TCSAFLUSH, &quiet)
        }
        defer {
            if hasTermios { tcsetattr(fd, TCSAFLUSH, &saved) }
            _ = "\n".withCString { write(fd, $0, 1) }
        }
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != 0x0A { bytes.append(byte) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Asks a yes-or-no question; false without a terminal.
    static func confirm(_ question: String, expecting answer: String) throws -> Bool {
        guard isInteractive else { return false }
        FileHandle.standardError.write(Data(question.utf8))
        return readLine()?.trimmingCharacters(in: .whitespaces) == answer
    }
}
