import GRDB

// The schema's names, one place per table (the migrations in Store.swift create them). Rows are read with these
// columns (`row[EventColumns.state]`) and statements built with GRDB's SQL interpolation name them
// (`"UPDATE \(EventTable.self) SET \(EventColumns.state) = \(state)"`), as GRDB's record practices do.

/// `devices`: the handhelds known to the daemon.
enum DeviceTable: TableRecord { static let databaseTableName = "devices" }
enum DeviceColumns {
    static let id = Column("id")
    static let name = Column("name")
    static let tokenHash = Column("token_hash")
    static let active = Column("active")
    static let createdAt = Column("created_at")
    static let lastSeenAt = Column("last_seen_at")
}

/// `users`: the people who collect events, with their PIN hashes.
enum UserTable: TableRecord { static let databaseTableName = "users" }
enum UserColumns {
    static let id = Column("id")
    static let name = Column("name")
    static let role = Column("role")
    static let active = Column("active")
    static let pinHash = Column("pin_hash")
    static let pinSalt = Column("pin_salt")
    static let pinRounds = Column("pin_rounds")
    static let pinPeppered = Column("pin_peppered")
    static let createdAt = Column("created_at")
}

/// `login_failures`: wrong PINs (and checks still running) per user name, known or not.
enum LoginFailureTable: TableRecord { static let databaseTableName = "login_failures" }
enum LoginFailureColumns {
    static let id = Column("id")
    static let userName = Column("user_name")
    static let at = Column("at")
    static let pending = Column("pending")
}

/// `login_locks`: user names locked after too many wrong PINs, until when.
enum LoginLockTable: TableRecord { static let databaseTableName = "login_locks" }
enum LoginLockColumns {
    static let userName = Column("user_name")
    static let until = Column("until")
}

/// `login_tickets`: the SHA-256 of each login ticket, its device, user and span.
enum LoginTicketTable: TableRecord { static let databaseTableName = "login_tickets" }
enum LoginTicketColumns {
    static let id = Column("id")
    static let hash = Column("hash")
    static let deviceID = Column("device_id")
    static let userID = Column("user_id")
    static let issuedAt = Column("issued_at")
    static let expiresAt = Column("expires_at")
    static let endedAt = Column("ended_at")
    static let endedWhy = Column("ended_why")
}

/// `batches`: one row per stored batch (`batch_id` is the device's own id for it).
enum BatchTable: TableRecord { static let databaseTableName = "batches" }
enum BatchColumns {
    static let id = Column("id")
    static let deviceID = Column("device_id")
    static let batchID = Column("batch_id")
    static let userID = Column("user_id")
    static let license = Column("license")
    static let contentHash = Column("content_hash")
    static let eventCount = Column("event_count")
    static let receivedAt = Column("received_at")
    static let session = Column("session")
    static let ticketID = Column("ticket_id")
}

/// `events`: one row per stored event; `state` makes it the upload queue (`EventState`).
enum EventTable: TableRecord { static let databaseTableName = "events" }
enum EventColumns {
    static let id = Column("id")
    /// The `batches` row (its `id`, not the device's batch id).
    static let batchID = Column("batch_id")
    static let seq = Column("seq")
    static let type = Column("type")
    static let tag = Column("tag")
    static let at = Column("at")
    static let metrcDate = Column("metrc_date")
    static let fields = Column("fields")
    static let userID = Column("user_id")
    static let license = Column("license")
    static let state = Column("state")
    static let updatedAt = Column("updated_at")
    static let attempts = Column("attempts")
    static let message = Column("message")
    static let metrcID = Column("metrc_id")
    static let keyKind = Column("key_kind")
    static let keyReason = Column("key_reason")
    static let firstAttemptAt = Column("first_attempt_at")
    static let lastAttemptAt = Column("last_attempt_at")
    static let nextAttemptAt = Column("next_attempt_at")
    static let unknownSince = Column("unknown_since")
    static let attemptID = Column("attempt_id")
    static let heldCode = Column("held_code")
    static let readBackBase = Column("read_back_base")
    static let warning = Column("warning")
    /// How many of an unfinished event's tags another event heads (v11, kept by triggers: `ReadyHeads`).
    static let headsPending = Column("heads_pending")
}

/// `event_tags`: one row per (tag, event) an event names, for the order per tag.
enum EventTagTable: TableRecord { static let databaseTableName = "event_tags" }
enum EventTagColumns {
    static let tag = Column("tag")
    static let eventID = Column("event_id")
}

/// `tag_heads`: each tag's first unfinished event (v11, kept by triggers: `ReadyHeads`).
enum TagHeadTable: TableRecord { static let databaseTableName = "tag_heads" }
enum TagHeadColumns {
    static let tag = Column("tag")
    static let eventID = Column("event_id")
}

/// `upload_attempts`: one row per request to Metrc, recorded before it leaves.
enum UploadAttemptTable: TableRecord { static let databaseTableName = "upload_attempts" }
enum UploadAttemptColumns {
    static let id = Column("id")
    static let startedAt = Column("started_at")
    static let finishedAt = Column("finished_at")
    static let license = Column("license")
    static let action = Column("action")
    static let keyKind = Column("key_kind")
    static let keyUser = Column("key_user")
    static let keyReason = Column("key_reason")
    /// How many events the request carried.
    static let events = Column("events")
    static let outcome = Column("outcome")
    static let httpStatus = Column("http_status")
    static let message = Column("message")
    static let metrcIDs = Column("metrc_ids")
}

/// `user_keys`: each user's personal Metrc key (sealed when a store key is set) and its health.
enum UserKeyTable: TableRecord { static let databaseTableName = "user_keys" }
enum UserKeyColumns {
    static let userID = Column("user_id")
    static let key = Column("key")
    static let last4 = Column("last4")
    static let status = Column("status")
    static let setAt = Column("set_at")
    static let setBy = Column("set_by")
    static let checkedAt = Column("checked_at")
    static let acceptedAt = Column("accepted_at")
    static let lastCheckAt = Column("last_check_at")
    static let lastCheckResult = Column("last_check_result")
    static let metrcExpiresAt = Column("metrc_expires_at")
}

/// `audit`: the append-only, hash-chained audit log.
enum AuditTable: TableRecord { static let databaseTableName = "audit" }
enum AuditColumns {
    static let id = Column("id")
    static let at = Column("at")
    static let actor = Column("actor")
    static let action = Column("action")
    static let subject = Column("subject")
    static let detail = Column("detail")
    static let prevHash = Column("prev_hash")
    static let hash = Column("hash")
}

/// `settings`: named values (pause, status report, sync state, backup instants, …).
enum SettingTable: TableRecord { static let databaseTableName = "settings" }
enum SettingColumns {
    static let name = Column("name")
    static let value = Column("value")
}

/// `reference_items`: the copy of Metrc's lists, one row per item with its change number.
enum ReferenceItemTable: TableRecord { static let databaseTableName = "reference_items" }
enum ReferenceItemColumns {
    static let license = Column("license")
    static let kind = Column("kind")
    static let key = Column("key")
    static let item = Column("item")
    static let change = Column("change")
    static let removedAt = Column("removed_at")
}

/// `reference_changes`: each license's last change number.
enum ReferenceChangeTable: TableRecord { static let databaseTableName = "reference_changes" }
enum ReferenceChangeColumns {
    static let license = Column("license")
    static let last = Column("last")
}

/// `reference_syncs`: how each kind of list last synced, per license.
enum ReferenceSyncTable: TableRecord { static let databaseTableName = "reference_syncs" }
enum ReferenceSyncColumns {
    static let license = Column("license")
    static let kind = Column("kind")
    static let lastSuccessAt = Column("last_success_at")
    static let lastFullAt = Column("last_full_at")
    static let windowEnd = Column("window_end")
    static let lastError = Column("last_error")
    static let lastErrorAt = Column("last_error_at")
}

/// `sync_requests`: syncs asked for by outlawctl, picked up by the daemon.
enum SyncRequestTable: TableRecord { static let databaseTableName = "sync_requests" }
enum SyncRequestColumns {
    static let id = Column("id")
    static let requestedBy = Column("requested_by")
    static let full = Column("full")
    static let requestedAt = Column("requested_at")
    static let startedAt = Column("started_at")
    static let finishedAt = Column("finished_at")
    static let result = Column("result")
}

/// Names that listings give their result columns (`d.name AS device`), read back with the same constants.
enum ListingColumns {
    /// A batch's row id (`b.id AS pk`), which groups a listing's events by batch.
    static let batchPK = Column("pk")
    /// The name of the device that sent the batch (`d.name AS device`).
    static let device = Column("device")
    /// The name of the user who collected it (`u.name AS user`).
    static let user = Column("user")
    /// `d.name AS device_name`, `u.name AS user_name`: a batch summary's device and user, and an event's collector.
    static let deviceName = Column("device_name")
    static let userName = Column("user_name")
}
