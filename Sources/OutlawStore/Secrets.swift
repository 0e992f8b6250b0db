import Foundation

/// Device tokens and PIN hashing: tokens are random and checked by SHA-256, PINs by salted PBKDF2.
public enum Secrets {
    /// PBKDF2-SHA256 rounds for new PINs; stored per user so it can be raised later.
    public static let pinRounds = 210_000

    /// A new device token: 32 random bytes, base64url without padding.
    public static func newDeviceToken() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func tokenHash(_ token: String) -> Data {
        LibCrypto.sha256(Data(token.utf8))
    }

    public static func newSalt() -> Data {
        var rng = SystemRandomNumberGenerator()
        return Data((0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    public static func pinHash(_ pin: String, salt: Data, rounds: Int) -> Data {
        LibCrypto.pbkdf2SHA256(password: Data(pin.utf8), salt: salt, rounds: max(rounds, 1))
    }

    /// One PIN check at a time, on its own thread: a slow KDF must not hold one of Swift's few cooperative
    /// threads (on Linux `DispatchQueue.global()` shares them), and a PIN-guessing burst is serialised.
    private static let kdfQueue = DispatchQueue(label: "outlawd.pin-kdf")

    /// `pinHash` off Swift's cooperative pool.
    public static func pinHashOffThePool(_ pin: String, salt: Data, rounds: Int) async -> Data {
        await withCheckedContinuation { continuation in
            kdfQueue.async { continuation.resume(returning: pinHash(pin, salt: salt, rounds: rounds)) }
        }
    }

    /// Compares without stopping at the first difference, so timing does not reveal a prefix.
    public static func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }

    /// The SHA-256 of a batch's canonical content.
    public static func contentHash(_ canonical: String) -> Data {
        LibCrypto.sha256(Data(canonical.utf8))
    }
}

extension Secrets {
    /// A PIN hash with the store key's pepper: HMAC-SHA256(key: pepper, message: PBKDF2-SHA256(pin, salt, rounds)).
    /// The pepper (`KeySeal.pinPepper`) is not in the store, so a copy of the store alone cannot be searched for PINs.
    public static func pepperedPINHash(_ pin: String, salt: Data, rounds: Int, pepper: Data) -> Data {
        Secrets.pepper(pinHash(pin, salt: salt, rounds: rounds), with: pepper)
    }

    /// Peppers a PBKDF2 hash already computed, e.g. an unpeppered hash that just verified, to upgrade it
    /// without running PBKDF2 again.
    public static func pepper(_ pbkdf2Hash: Data, with pepper: Data) -> Data {
        LibCrypto.hmacSHA256(key: pepper, message: pbkdf2Hash)
    }
}
