import Logging
import OutlawConfig
import OutlawKeys
import OutlawProtocol
import OutlawStore

extension Daemon {
    /// Says once what keeps uploads from running (no Metrc address, no keys: a fresh installation), naming the files to
    /// fill, and keeps the same sentences in the store for `outlawctl status`. At start, and again when keys are reloaded.
    static func announceUploadGaps(_ configuration: DaemonConfiguration, credentials: MetrcCredentials, store: Store, logger: Logger) {
        let gaps = credentials.uploadGaps(configuration)
        for gap in gaps {
            let id: MessageID = switch gap.kind {
            case .address: .metrcAddressMissing
            case .vendorKey: .vendorKeyMissing
            case .defaultKey: .defaultKeyMissingAtStart
            }
            // A warning, not an error: batches are stored and acknowledged; what waits is named with its fix.
            logger.warning("\(gap.message)", metadata: id.metadata())
        }
        try? store.setUploadGaps(gaps.map(\.message))
    }
}
