import Foundation
import OutlawConfig

extension DevMode {
    /// The web console's self-signed certificate for dev mode (devices stay on plain loopback TCP): made once with
    /// Debian's `openssl` under `tls/` in the dev folder, owner-only. Without openssl the console is not served,
    /// and the banner says so.
    func consoleCertificate() -> (certificate: String, key: String)? {
        let certificate = directory.appendingPathComponent("tls/console-cert.pem").path
        let key = directory.appendingPathComponent("tls/console-key.pem").path
        let fm = FileManager.default
        if fm.fileExists(atPath: certificate), fm.fileExists(atPath: key) { return (certificate, key) }
        guard fm.isExecutableFile(atPath: "/usr/bin/openssl") else { return nil }
        do {
            try fm.createDirectory(atPath: directory.appendingPathComponent("tls").path, withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
            let openssl = Process()
            openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "825",
                                 "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
            openssl.standardOutput = FileHandle.nullDevice
            openssl.standardError = FileHandle.nullDevice
            try openssl.run()
            openssl.waitUntilExit()
            guard openssl.terminationStatus == 0 else { return nil }
            try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
            return (certificate, key)
        } catch {
            return nil
        }
    }

    /// Points `[console]` at dev mode's own certificate; on a free port when the devices' port is picked freely (tests).
    public func configureConsole(_ config: inout DaemonConfiguration) {
        guard let (certificate, key) = consoleCertificate() else { return }
        config.console.tlsCertificateFile = certificate
        config.console.tlsKeyFile = key
        if config.server.port == 0 { config.console.port = 0 }
    }

    /// The banner's console line.
    func consoleLine(_ config: DaemonConfiguration) -> String {
        guard config.console.enabled, config.console.tlsCertificateFile != nil else {
            return "not served (dev mode makes its certificate with openssl: apt-get install openssl)"
        }
        let url = config.console.port == 0 ? "see the log line \"serving the web console\""
            : "https://\(config.console.host):\(config.console.port)/"
        return "\(url)  (self-signed certificate; sign in as admin, PIN 0000)"
    }
}
