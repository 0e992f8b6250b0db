/// `metrc_key` in `login` and `set_key` answers: whose key will sign a person's uploads (PROTOCOL.md, "Users").
public enum MetrcKeyStatus: String, Sendable, CaseIterable, Codable {
    /// Their own key, last known good.
    case personal
    /// No personal key: the facility's Default key signs.
    case `default`
    /// Metrc refused their personal key: their uploads wait until it is fixed.
    case rejected
    /// The facility requires personal keys and this person has none: their uploads wait.
    case required
}

/// `code` of a refused `login` or `set_key` answer.
public enum LoginRefusal: String, Sendable, CaseIterable {
    /// Unknown user or wrong PIN: one answer for both.
    case badCredentials = "bad_credentials"
    case inactiveUser = "inactive_user"
    /// Too many wrong PINs: the name is locked for a while.
    case locked
    /// `set_key`: the actor may not set this person's key.
    case forbidden
    /// `set_key`: Metrc refused the key; nothing was stored.
    case keyRejected = "key_rejected"
    /// `set_key`: the request cannot be carried out as sent (its `message` says why).
    case badRequest = "bad_request"
}
