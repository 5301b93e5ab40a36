import Hummingbird

/// Per-request state of the central node's routes.
public struct SyncRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// Bodies are read explicitly with ``SyncProtocol/maximumRequestBytes``.
    public var maxUploadSize: Int { SyncProtocolLimits.maximumRequestBytes }
}
