import ArgumentParser
import Foundation
import OutlawStore

struct TLSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls", abstract: "The device port's TLS certificate.",
        subcommands: [Fingerprint.self])

    struct Fingerprint: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the SHA-256 fingerprint of the device port's certificate (what the handhelds pin).",
            discussion: "The first certificate of [server] tls_certificate_file; the same as "
                + "`openssl x509 -noout -fingerprint -sha256 -in FILE` prints after `=`.")
        @OptionGroup var options: ConfigOptions
        @Flag(name: .long, help: "JSON output.") var json = false

        struct Shown: Encodable {
            let certificate: String
            let sha256: String
            /// The certificate's notAfter, when its DER could be read that far.
            let expires: String?
        }

        func run() throws {
            let configuration = try options.load()
            guard let path = configuration.server.tlsCertificateFile else {
                throw UsageError(message: "TLS is not configured: no [server] tls_certificate_file in \(options.config)")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw UsageError(message: "cannot read the TLS certificate \(path) (server.tls_certificate_file)")
            }
            guard let der = PEMCertificate.firstDER(String(decoding: data, as: UTF8.self)) else {
                throw UsageError(message: "\(path) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
            }
            let shown = Shown(certificate: path, sha256: PEMCertificate.fingerprint(der), expires: PEMCertificate.notAfter(der))
            if json { return try printJSON(shown) }
            var rows = [["sha256", shown.sha256]]
            if let expires = shown.expires { rows.append(["expires", expires]) }
            rows.append(["file", path])
            print(rows.map { $0[0].padding(toLength: 8, withPad: " ", startingAt: 0) + " " + $0[1] }.joined(separator: "\n"))
        }
    }
}

/// Just enough of PEM and X.509's DER to fingerprint a certificate and read its expiry.
enum PEMCertificate {
    /// The DER bytes of the first `CERTIFICATE` block (the server's own, before any chain).
    static func firstDER(_ pem: String) -> Data? {
        guard let begin = pem.range(of: "-----BEGIN CERTIFICATE-----"),
              let end = pem.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<pem.endIndex)
        else { return nil }
        let body = pem[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
        guard let der = Data(base64Encoded: String(body)), !der.isEmpty else { return nil }
        return der
    }

    /// `AA:BB:...`, uppercase: openssl's notation.
    static func fingerprint(_ der: Data) -> String {
        Secrets.sha256(der).map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// tbsCertificate's validity.notAfter as RFC 3339 (UTC); nil when the DER is not what X.509 says.
    static func notAfter(_ der: Data) -> String? {
        let bytes = [UInt8](der)
        // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serial, signature, issuer, validity, ... } }
        guard let certificate = element(bytes, at: 0), certificate.tag == 0x30,
              let tbs = element(bytes, at: certificate.content.lowerBound), tbs.tag == 0x30
        else { return nil }
        var offset = tbs.content.lowerBound
        var fields: [(tag: UInt8, content: Range<Int>)] = []
        while offset < tbs.content.upperBound, fields.count < 6, let e = element(bytes, at: offset) {
            fields.append((e.tag, e.content))
            offset = e.content.upperBound
        }
        if fields.first?.tag == 0xA0 { fields.removeFirst() }  // version, absent in v1 certificates
        // serial, signature, issuer, validity
        guard fields.count >= 4, fields[3].tag == 0x30,
              let notBefore = element(bytes, at: fields[3].content.lowerBound),
              let notAfter = element(bytes, at: notBefore.content.upperBound)
        else { return nil }
        return time(tag: notAfter.tag, String(decoding: bytes[notAfter.content], as: UTF8.self))
    }

    /// One DER element at `offset`: its tag and where its content lies.
    private static func element(_ bytes: [UInt8], at offset: Int) -> (tag: UInt8, content: Range<Int>)? {
        guard offset + 2 <= bytes.count else { return nil }
        let tag = bytes[offset]
        var length = Int(bytes[offset + 1])
        var start = offset + 2
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard (1...4).contains(count), start + count <= bytes.count else { return nil }
            length = bytes[start..<start + count].reduce(0) { $0 << 8 | Int($1) }
            start += count
        }
        guard start + length <= bytes.count else { return nil }
        return (tag, start..<start + length)
    }

    /// UTCTime (`YYMMDDHHMMSSZ`, 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as `YYYY-MM-DDTHH:MM:SSZ`.
    private static func time(tag: UInt8, _ text: String) -> String? {
        var digits = text
        if tag == 0x17, text.count == 13 {
            guard let yy = Int(text.prefix(2)) else { return nil }
            digits = (yy >= 50 ? "19" : "20") + text
        } else if !(tag == 0x18 && text.count == 15) {
            return nil
        }
        guard digits.hasSuffix("Z"), digits.dropLast().allSatisfy(\.isASCII), digits.dropLast().allSatisfy(\.isNumber) else { return nil }
        let d = Array(digits)
        func part(_ r: Range<Int>) -> String { String(d[r]) }
        return "\(part(0..<4))-\(part(4..<6))-\(part(6..<8))T\(part(8..<10)):\(part(10..<12)):\(part(12..<14))Z"
    }
}
