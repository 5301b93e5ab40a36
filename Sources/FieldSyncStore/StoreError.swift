/// A store that cannot be opened or a request it cannot carry out. Messages say what is wrong and what to do.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case noReplica, alreadyExists, notAStore, newerSchema, locked, notFound, ambiguous, invalid, io, encrypted, wrongKey
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
