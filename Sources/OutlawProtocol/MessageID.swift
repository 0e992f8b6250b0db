/// The journal `MESSAGE_ID` of every outlawd log message at notice or worse, and of the few info lines the docs'
/// recipes look for: one id per distinct message, made with `systemd-id128 new` and never changed or reused, so
/// operators match `journalctl MESSAGE_ID=...` instead of English text, and `journalctl -x` shows the explanation
/// in packaging/outlawd.catalog (one entry per case; a test holds the two together and finds every notice-or-worse
/// log call in Sources carrying its own id).
///
/// A new message: a case with a fresh `systemd-id128 new`, an entry in the catalog (Subject, what happened, what to
/// do, the outlawctl command), and `metadata: MessageID.x.metadata([...])` at its log call.
///
/// Here, not beside the journal handler, because every module that logs imports this one; and without the logging
/// library, because the fuzz targets build this module on its own.
public enum MessageID: String, CaseIterable, Sendable, CustomStringConvertible {
    // Start-up: configuration and secrets (OutlawDaemon, outlawd)
    case storeKeyMissingUnsealed = "5c248075866b4b2b963bb528bd8a4243"
    case storeKeyMissing = "7f2e1009bae040c6ad65bfd24c497335"
    case pepperedPINsWithoutStoreKey = "3ce6a686f4f349f698f0c36d72e6e0a6"
    case plainKeysSealed = "dd41dbee062f4b39a00b20e977177614"
    case metrcAddressMissing = "cdb901d72bd14bc69e7f32f6b778e3da"
    case defaultKeyMissingAtStart = "c3f526b936994c9e97a153d1c34478b8"
    case vendorKeyMissing = "14462f2485e6459ca254bf891c766dee"
    case plaintextDevices = "5d6bba1d6147479680f5be6358c9b4d0"
    case loginTicketsNotRequired = "6d3ce925a01f4ddabd6e2704ac288ef0"
    case devConfigNotWritten = "6535189343be46cb95b11ec27f4e694a"
    case cannotStart = "02f1cf23044046098ac366e30d7d2885"
    case stoppedOnError = "49ad0fcfb7e14f80bd78d1dc6809d450"
    case uploaderStalled = "8d4de022d88144e2b7ef5622a65f62f0"
    case storeSlowToOpen = "fd0db5a03adb4c1ab08ac16bac1c858b"

    // Key health (OutlawDaemon)
    case keyHealthUnreadable = "a9a5b27e665b4b91a01c9a51f8ce13d1"
    case personalKeyUnreadable = "9689afcd9c29402190bfa8d3f319e786"
    case personalKeyRefusedByCheck = "c37cd37e66cf467ab41d8f0ce4e67def"
    case personalKeyCheckUnreachable = "58159616a73444149aa19c062ff4e1cd"
    case personalKeyCheckNotRecorded = "a09687fddb1442c691accd3def6b77d9"
    case personalKeyExpiring = "6f15aa994f764f05a3ec1ecafda9830f"
    case defaultKeyExpiring = "46329f7c6a8b49d19cab3fb9cb01f796"

    // Audit witness (OutlawDaemon)
    case auditStartNotRecorded = "626ebc72641a45c2b23a0a472d5f51b3"
    case auditHead = "ffd2551eae8448b1b1a9e2352bfbec9d"
    case auditHeadUnreadable = "1cb11ed9b1b746b3aedea4a25b88bd06"

    // Uploads (Upload)
    case longWait = "d38638bafb1e4ae9b2e6b66be7df39cb"
    case defaultKeyNotConfigured = "6561242040174523a4a4c3925a42b115"
    case defaultKeyRefusedByCheck = "c6844f53360a4fcbaa51b849de039343"
    case defaultKeyCheckUnreachable = "af8d86a574204f2e9036a2bf06a585c5"
    case defaultKeyCheckNotRecorded = "733c16f11f51413e8339ce632e69f19b"
    case metrcRejectedEvents = "d3f1e7052d6142c182d1470ffe2ff6e4"
    case metrcRequestFailed = "6c23dbf9a3df4dcdaad547d67a7bd1e7"
    case uploadsInterrupted = "813721c890ab46cfb3a48598fa379cb2"
    case uploadQueueNotRecovered = "642cbb1380694848a1645964729e7180"
    case uploadRoundFailed = "9651b7975a854b7e833e4c156f85e5e2"
    case eventsHeld = "16d56ec71e084656a7fc4d13865cddb4"
    case eventsUnreadable = "eb35db5797f34d1b9c7992df0b86c50f"
    case attemptNotRecorded = "e416e4457b5a49b0b28099769324cb88"
    case metrcAskedSmallerRequests = "fae203b8c6364ea68bff64cc6e5b2df0"
    case outcomeUnknown = "634d6080daa3449988dab09eff729721"
    case outcomeNotRecorded = "4d5a27e8dda046d2a1302218c60ba109"
    case attemptNotWithdrawn = "a30691a997dd46cb9fd3daf8a08fb529"
    case manicureWaitsForRead = "0324f1e9dbae48d297c4ec9f105047ed"
    case manicureBasesNotKept = "0acb9016d8564d628dcb77104217e17c"
    case personalKeyRefusedByUpload = "713792facdcd41f5bc81593bc211bc9c"
    case defaultKeyRefusedByUpload = "31adab965bf14eb6b65bbad1ddaf7e35"
    case readBackNotRecorded = "bcf9af381120408fabe8c7deb418c86f"
    case readBack = "289a8018295941908eaa380c108e5372"
    case readBackUndecided = "bd33095c810c40af990506d023680f96"

    // Devices (DeviceServer)
    case connectionStalled = "76cedefaca2e4e289a158a9b8c935bd2"
    case deviceRefused = "fc3e3896ff8846ecb783f1f4fad1ad3c"
    case batchInvalid = "5bdfac3d65fc4938b4baad6405fb03cb"
    case batchRefused = "4d861121497449ab84ed017719b402e1"
    case tooManyConnections = "d7b1ed6537ea472d87ed628020326bf6"
    case tooManyBeforeHello = "5122cebd812247a9a02f986900794c85"
    case acceptFailed = "34ee63cf13ec4796a1ba087a37ffd8b4"
    case userLocked = "a6030cbcba55438fbd5adbf3d6d84daa"
    case loginWrongPIN = "b9f56b015b414feea2d6f2ec4c24d184"
    case loginUserDisabled = "42354900b2a44e369000f5b39e2bf5d7"
    case loginUserLocked = "109f89b42b2c4e48848c95cc14a7084b"
    case setKeyWrongPIN = "bd459d1c62494d72ae4b4eb67a102d6a"
    case setKeyActorLocked = "e094ab14554c4df9bb6b2a68b70bbbf1"

    // Metrc reads (Metrc) and reference data (Reference)
    case metrcRateLimited = "6274bba705764abfa610247e613a4c31"
    case referenceSyncRetry = "1d20599937d94697b8c19e7fbe1a1f85"
    case referenceSyncSkipped = "9db8c36cd9ac4453b58201f07d8cd3c9"
    case referenceSyncFailed = "dfc0e67e7335476a88f8c8813c88efb3"

    // Info lines operators look for (docs/operations.md's recipes)
    case referenceSynced = "928ad25aa0dc4f6db9606ac8b381f974"

    // Reload (OutlawDaemon)
    case reloadRefused = "2acaae55c819478499a8351d63730da7"
    case reloadAuditFailed = "48bc94a475b442f7a99a8b2e98c38c25"
    case reloaded = "c54822091c714f5a905b6765d9e1c5a1"

    // Metrics (OutlawMetrics, OutlawDaemon)
    case metricsNotServed = "2907d28e599f402084adf60a237d4a1f"
    case metricsOnNetworkAddress = "9a5cf78cbb914a7b8617da095d5fa1a9"

    // The web console (Console, OutlawDaemon, [console])
    case consoleNotServed = "4ff2c6dd0c87448c926fd23efe6b9b65"
    case consoleNeedsTLS = "db4a0ae078aa40ac97b6a4d5e4e18034"
    case consoleFormRefused = "8ffe27f5fe9749ddb88b789fa2f06517"

    // The daemon's own backups (OutlawDaemon, [backup])
    case backupTaken = "ce5f0ae598b642dc8c1c7d54a6991a7c"
    case backupFailed = "91c6067456a64b828caae410949e4ac6"
    case backupAuditNotRecorded = "e5acfeae786f42a8bef2d5ff239ba33f"
    case backupsNotPruned = "3dbfc0b9911d464ea2c68fce0e6e0a54"

    // Retention: archives of old finished events (OutlawDaemon, [retention])
    case retentionRun = "d3444a6bdeb14c01830388a068cb262a"
    case retentionFailed = "4a19ea30338c4f9e9aaf24b06213ad67"
    case retentionKeptBatches = "26df35216222468c9badc4041c669cf5"

    /// The log metadata key carrying the id; the journal handler writes it as `MESSAGE_ID=`.
    public static let metadataKey = "message_id"

    public var description: String { rawValue }

    /// `metadata` with this id added, for a log call:
    /// `logger.notice("refused a device", metadata: MessageID.deviceRefused.metadata(["remote": "\(remote)"]))`.
    /// Generic rather than `Logger.Metadata` so this module needs no logging library.
    public func metadata<Value: ExpressibleByStringLiteral>(_ metadata: [String: Value] = [:]) -> [String: Value]
        where Value.StringLiteralType == String
    {
        var withID = metadata
        withID[Self.metadataKey] = Value(stringLiteral: rawValue)
        return withID
    }
}
