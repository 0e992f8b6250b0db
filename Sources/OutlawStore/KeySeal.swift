import Foundation

/// Seals personal Metrc keys in the store with AES-GCM under the store key, so a copy of the SQLite file
/// alone does not give away anyone's Metrc identity. Without a store key, keys are kept as they are.
public struct KeySeal: Sendable {
    let keyBytes: Data
    static let prefix = "sealed:v1:"

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

    public func seal(_ plain: String) throws -> String {
        guard let combined = try? LibCrypto.sealAESGCM(Data(plain.utf8), key: keyBytes) else { throw StoreError("cannot seal a key") }
        return KeySeal.prefix + combined.base64EncodedString()
    }

    /// The plain key; a value stored before sealing was configured passes through unchanged.
    public func open(_ stored: String) throws -> String {
        guard KeySeal.isSealed(stored) else { return stored }
        guard let data = Data(base64Encoded: String(stored.dropFirst(KeySeal.prefix.count))),
              let plain = LibCrypto.openAESGCM(data, key: keyBytes)
        else { throw StoreError("a personal Metrc key cannot be unsealed: is store.key_file the key it was sealed with?") }
        return String(decoding: plain, as: UTF8.self)
    }

    public static func isSealed(_ stored: String) -> Bool { stored.hasPrefix(prefix) }

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
