import Foundation

/// Seals personal Metrc keys in the store with AES-GCM under the store key, so a copy of the SQLite file
/// alone does not give away anyone's Metrc identity. Without a store key, keys are kept as they are.
///
/// `sealed:v2:` binds each sealed key to its user's id (the associated data), so a sealed value copied or
/// moved onto another user's row does not open. `sealed:v1:` (no associated data) is still read, and is
/// sealed again as v2 on its next write or by `Store.sealPlainKeys()`.
public struct KeySeal: Sendable {
    let keyBytes: Data
    /// Any sealed value, whatever its version: such a value is never taken for a plain key.
    static let sealedPrefix = "sealed:"
    static let v1Prefix = "sealed:v1:"
    static let v2Prefix = "sealed:v2:"

    /// A store key: 32 bytes, given as 64 hex characters or base64 (e.g. `openssl rand -hex 32`).
    public init?(text: String) {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.count == 64, let bytes = KeySeal.hex(t) {
            keyBytes = bytes
        } else if let data = Data(base64Encoded: t), data.count == 32 {
            keyBytes = data
        } else {
            return nil
        }
    }

    /// Seals `plain` as `sealed:v2:` for the user with this id (`users.id`); only that user's row opens it.
    public func seal(_ plain: String, userID: Int64) throws -> String {
        guard let combined = try? LibCrypto.sealAESGCM(Data(plain.utf8), key: keyBytes, aad: KeySeal.associatedData(userID: userID)) else {
            throw StoreError("cannot seal a key")
        }
        return KeySeal.v2Prefix + combined.base64EncodedString()
    }

    /// The version 1 format (no associated data), kept so tests can make the values older stores hold.
    func sealV1(_ plain: String) throws -> String {
        guard let combined = try? LibCrypto.sealAESGCM(Data(plain.utf8), key: keyBytes) else { throw StoreError("cannot seal a key") }
        return KeySeal.v1Prefix + combined.base64EncodedString()
    }

    /// The plain key stored for the user with this id; a value stored before sealing was configured passes
    /// through unchanged.
    public func open(_ stored: String, userID: Int64) throws -> String {
        guard KeySeal.isSealed(stored) else { return stored }
        if stored.hasPrefix(KeySeal.v2Prefix) {
            guard let data = Data(base64Encoded: String(stored.dropFirst(KeySeal.v2Prefix.count))),
                  let plain = LibCrypto.openAESGCM(data, key: keyBytes, aad: KeySeal.associatedData(userID: userID))
            else {
                throw StoreError("""
                    the personal Metrc key stored for user id \(userID) cannot be unsealed: it was sealed for another user \
                    (a copied or moved row) or under another store key (is store.key_file the key it was sealed with?); \
                    set the key again
                    """)
            }
            return String(decoding: plain, as: UTF8.self)
        }
        if stored.hasPrefix(KeySeal.v1Prefix) {
            guard let data = Data(base64Encoded: String(stored.dropFirst(KeySeal.v1Prefix.count))),
                  let plain = LibCrypto.openAESGCM(data, key: keyBytes)
            else { throw StoreError("a personal Metrc key cannot be unsealed: is store.key_file the key it was sealed with?") }
            return String(decoding: plain, as: UTF8.self)
        }
        throw StoreError("the personal Metrc key stored for user id \(userID) is sealed in a format this outlawd does not know (a newer version's?)")
    }

    /// Sealed in any format (v1, v2 or one this version does not know).
    public static func isSealed(_ stored: String) -> Bool { stored.hasPrefix(sealedPrefix) }

    /// Sealed in the current format (v2): nothing left to upgrade.
    public static func isCurrent(_ stored: String) -> Bool { stored.hasPrefix(v2Prefix) }

    /// What a v2 seal authenticates besides the key: the user's id, after a label that keeps these bytes
    /// apart from any other use of the store key.
    static func associatedData(userID: Int64) -> Data {
        Data("outlawd user key v2\0\(userID)".utf8)
    }

    /// The PIN pepper: HMAC-SHA256 under the store key, so PIN hashes copied without the store key cannot be
    /// guessed offline.
    public var pinPepper: Data {
        LibCrypto.hmacSHA256(key: keyBytes, message: Data("outlawd PIN pepper v1".utf8))
    }

    static func hex(_ s: String) -> Data? {
        var out = Data(capacity: s.count / 2)
        var index = s.startIndex
        while index < s.endIndex {
            let next = s.index(index, offsetBy: 2)
            guard let byte = UInt8(s[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
    }
}
