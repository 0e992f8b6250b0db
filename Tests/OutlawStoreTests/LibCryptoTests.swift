import Foundation
@testable import OutlawStore
import Testing

/// Known answers from the standards, so the libcrypto binding is checked against the algorithms themselves.
@Suite("libcrypto primitives")
struct LibCryptoTests {
    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
    static func bytes(_ hex: String) -> Data { KeySeal.hex(hex)! }

    @Test func sha256KnownAnswers() {
        // FIPS 180-2 appendix B.1 and the empty message.
        #expect(Self.hex(LibCrypto.sha256(Data("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex(LibCrypto.sha256(Data())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func pbkdf2KnownAnswer() {
        // RFC 7914, section 11: PBKDF2-HMAC-SHA256, P = "passwd", S = "salt", c = 1, dkLen = 64.
        let derived = LibCrypto.pbkdf2SHA256(password: Data("passwd".utf8), salt: Data("salt".utf8), rounds: 1, length: 64)
        #expect(Self.hex(derived) == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
            + "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783")
    }

    @Test func aesGCMKnownAnswerAndTampering() throws {
        // The GCM specification's test case 14: AES-256, zero key, zero 96-bit IV, one zero block.
        let key = Data(count: 32)
        let combined = Data(count: 12) + Self.bytes("cea7403d4d606b6e074ec5d3baf39d18") + Self.bytes("d0d1c8a799996bf0265b98b5d48ab919")
        #expect(LibCrypto.openAESGCM(combined, key: key) == Data(count: 16))
        var tampered = combined
        tampered[14] ^= 1
        #expect(LibCrypto.openAESGCM(tampered, key: key) == nil)

        let other = Data(repeating: 7, count: 32)
        let sealed = try LibCrypto.sealAESGCM(Data("a Metrc key".utf8), key: other)
        #expect(sealed.count == 12 + 11 + 16)
        #expect(LibCrypto.openAESGCM(sealed, key: other) == Data("a Metrc key".utf8))
        #expect(LibCrypto.openAESGCM(sealed, key: key) == nil)
        #expect(try LibCrypto.sealAESGCM(Data("a Metrc key".utf8), key: other) != sealed, "a fresh nonce each time")
    }
}
