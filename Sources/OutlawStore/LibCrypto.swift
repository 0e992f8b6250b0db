import CLibCrypto
import Foundation

/// SHA-256, HMAC-SHA256, PBKDF2-HMAC-SHA256 and AES-256-GCM from the system's libcrypto (OpenSSL), through EVP.
///
/// The TLS stack (swift-nio-ssl, which AsyncHTTPClient needs anyway) brings its own BoringSSL; swift-crypto
/// would have compiled a second copy of it for these few primitives. Debian's libcrypto costs no build time.
enum LibCrypto {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func sha256(_ bytes: some ContiguousBytes) -> Data {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_sha256(), nil)
        }
        precondition(ok == 1 && length == 32, "EVP_Digest(SHA-256) failed")
        return Data(digest[0..<32])
    }

    /// HMAC-SHA256 through OpenSSL 3's one-shot EVP_Q_mac (the shim includes evp.h, not hmac.h).
    static func hmacSHA256(key: Data, message: Data) -> Data {
        // Never a null key pointer, even for an empty key: EVP_Q_mac refuses one.
        let keyBytes = [UInt8](key) + [0]
        let messageBytes = [UInt8](message) + [0]
        var out = [UInt8](repeating: 0, count: 32)
        var length = 0
        let result = EVP_Q_mac(nil, "HMAC", nil, "SHA256", nil, keyBytes, key.count, messageBytes, message.count,
                               &out, out.count, &length)
        precondition(result != nil && length == 32, "EVP_Q_mac(HMAC-SHA256) failed")
        return Data(out)
    }

    static func pbkdf2SHA256(password: Data, salt: Data, rounds: Int, length: Int = 32) -> Data {
        var out = [UInt8](repeating: 0, count: length)
        let ok = password.withUnsafeBytes { pass in
            salt.withUnsafeBytes { saltBytes in
                PKCS5_PBKDF2_HMAC(pass.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(pass.count),
                                  saltBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(saltBytes.count),
                                  Int32(clamping: rounds), EVP_sha256(), Int32(length), &out)
            }
        }
        precondition(ok == 1, "PKCS5_PBKDF2_HMAC failed")
        return Data(out)
    }

    static let nonceBytes = 12
    static let tagBytes = 16

    /// AES-256-GCM with a fresh random nonce; returns nonce ‖ ciphertext ‖ tag (CryptoKit's "combined" form).
    /// `aad` is authenticated but not stored: opening needs the same bytes.
    static func sealAESGCM(_ plain: Data, key: Data, aad: Data = Data()) throws -> Data {
        guard key.count == 32 else { throw Failure(description: "AES-256-GCM needs a 32-byte key") }
        var rng = SystemRandomNumberGenerator()
        let nonce = (0..<nonceBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw Failure(description: "EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var cipher = [UInt8](repeating: 0, count: plain.count + 16)
        var tag = [UInt8](repeating: 0, count: tagBytes)
        var written: Int32 = 0
        var final: Int32 = 0
        var aadWritten: Int32 = 0
        let aadBytes = [UInt8](aad)
        let ok = key.withUnsafeBytes { keyBytes in
            plain.withUnsafeBytes { input in
                EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1
                    && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceBytes), nil) == 1
                    && EVP_EncryptInit_ex(ctx, nil, nil, keyBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), nonce) == 1
                    // Associated data goes in first, with no output buffer.
                    && (aadBytes.isEmpty || EVP_EncryptUpdate(ctx, nil, &aadWritten, aadBytes, Int32(aadBytes.count)) == 1)
                    && EVP_EncryptUpdate(ctx, &cipher, &written, input.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                         Int32(input.count)) == 1
                    && cipher.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + Int(written), &final) } == 1
                    && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(tagBytes), &tag) == 1
            }
        }
        guard ok else { throw Failure(description: "AES-GCM encryption failed") }
        return Data(nonce) + Data(cipher[0..<Int(written + final)]) + Data(tag)
    }

    /// Opens nonce ‖ ciphertext ‖ tag; nil when the key or `aad` is wrong or the data was changed.
    static func openAESGCM(_ combined: Data, key: Data, aad: Data = Data()) -> Data? {
        guard key.count == 32, combined.count >= nonceBytes + tagBytes else { return nil }
        let bytes = [UInt8](combined)
        let nonce = Array(bytes[0..<nonceBytes])
        let body = Array(bytes[nonceBytes..<(bytes.count - tagBytes)])
        var tag = Array(bytes[(bytes.count - tagBytes)...])
        guard let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var plain = [UInt8](repeating: 0, count: body.count + 16)
        var written: Int32 = 0
        var final: Int32 = 0
        var aadWritten: Int32 = 0
        let aadBytes = [UInt8](aad)
        let ok = key.withUnsafeBytes { keyBytes in
            EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1
                && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceBytes), nil) == 1
                && EVP_DecryptInit_ex(ctx, nil, nil, keyBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), nonce) == 1
                && (aadBytes.isEmpty || EVP_DecryptUpdate(ctx, nil, &aadWritten, aadBytes, Int32(aadBytes.count)) == 1)
                && EVP_DecryptUpdate(ctx, &plain, &written, body, Int32(body.count)) == 1
                && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(tagBytes), &tag) == 1
                && plain.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + Int(written), &final) } == 1
        }
        return ok ? Data(plain[0..<Int(written + final)]) : nil
    }
}
