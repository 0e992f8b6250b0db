import Foundation
import OutlawConfig
import OutlawKeys
import OutlawTestSupport
import Testing

/// The Metrc keys of a fresh installation: where they are read from, what an empty or missing file means, and the
/// sentences that name the files to fill (the daemon's start, `outlawctl status`, `outlawd --check-config`).
@Suite("Metrc credentials and upload gaps")
struct UploadGapTests {
    let dir: TempDirectory

    init() throws {
        dir = try TempDirectory("outlawd-gaps")
    }

    func configuration(metrc: String) throws -> DaemonConfiguration {
        let path = try dir.write("outlawd.toml", "[facility]\nlicense = \"LIC-0001\"\n[metrc]\n\(metrc)\n")
        return try DaemonConfiguration.load(path: path)
    }

    @Test func keyFileContents() throws {
        #expect(KeyFileContent.read(dir.file("nothing-here")) == .missing)
        #expect(KeyFileContent.read(try dir.write("blank", "\n")) == .empty)
        #expect(KeyFileContent.read(try dir.write("key", "  vendor-key-123\n")) == .key("vendor-key-123"))
        try FileManager.default.createDirectory(atPath: dir.file("folder"), withIntermediateDirectories: true)
        #expect(KeyFileContent.read(dir.file("folder")) == .unreadable("is a folder, not a file"))
    }

    @Test func aCredentialIsNamedByTheFileTheUnitLoadsItFrom() throws {
        let config = try configuration(metrc: "vendor_key_file = \"secrets/vendor\"\ndefault_key_file = \"secrets/default\"")
        let credentials = try dir.write("creds/metrc-vendor-key", "\n")
        let (vendor, defaultKey) = MetrcCredentials.locate(config, environment: ["CREDENTIALS_DIRECTORY": (credentials as NSString).deletingLastPathComponent])
        #expect(vendor.fromCredentials && vendor.path == credentials)
        #expect(vendor.operatorFile == "/etc/outlawd/credentials/metrc-vendor-key")
        // No such credential: the configured file, named as it is.
        #expect(!defaultKey.fromCredentials && defaultKey.path == dir.file("secrets/default") && defaultKey.operatorFile == dir.file("secrets/default"))
        #expect(MetrcCredentials.locate(config, environment: [:]).vendor.path == dir.file("secrets/vendor"))
    }

    @Test func aFreshInstallationWaitsForBothKeysInOneSentence() throws {
        let config = try configuration(metrc: "base_url = \"https://api-ca.metrc.com\"")
        // The unit's stand-ins for missing files: a newline each.
        let folder = (try dir.write("creds/metrc-vendor-key", "\n") as NSString).deletingLastPathComponent
        _ = try dir.write("creds/metrc-default-key", "\n")
        let credentials = MetrcCredentials.load(config, environment: ["CREDENTIALS_DIRECTORY": folder])
        #expect(credentials.vendorKey == nil && credentials.defaultKey == nil)
        #expect(credentials.uploadGaps(config) == [UploadGap(kind: .vendorKey, message: """
            uploads wait for the Metrc keys: put them in /etc/outlawd/credentials/metrc-vendor-key and \
            /etc/outlawd/credentials/metrc-default-key (root only, 0600), then systemctl reload outlawd; batches are stored and \
            acknowledged meanwhile
            """)])
    }

    @Test func eachGapOnItsOwn() throws {
        let noAddress = try configuration(metrc: "vendor_key_file = \"v\"\ndefault_key_file = \"d\"")
        _ = try dir.write("v", "vendor\n")
        _ = try dir.write("d", "default\n")
        let both = MetrcCredentials.load(noAddress, environment: [:])
        #expect(both.uploadGaps(noAddress) == [UploadGap(kind: .address, message: """
            no Metrc address (metrc.base_url in \(dir.file("outlawd.toml"))): batches are stored and acknowledged, and uploaded once \
            it is set and outlawd restarted
            """)])

        let config = try configuration(metrc: "base_url = \"https://api-ca.metrc.com\"\nvendor_key_file = \"v\"\ndefault_key_file = \"none\"")
        let vendorOnly = MetrcCredentials.load(config, environment: [:])
        #expect(vendorOnly.uploadGaps(config) == [UploadGap(kind: .defaultKey, message: """
            no Default Metrc key: users without a personal key wait (held) and reference data is not synced until it is in \
            \(dir.file("none")) (root only, 0600), then systemctl reload outlawd
            """)])

        let unset = try configuration(metrc: "base_url = \"https://api-ca.metrc.com\"")
        let nothing = MetrcCredentials.load(unset, environment: [:])
        #expect(nothing.uploadGaps(unset).map(\.message) == ["""
            uploads wait for the Metrc keys: put them in a file metrc.vendor_key_file names (none is set) and a file \
            metrc.default_key_file names (none is set) (root only, 0600), then systemctl reload outlawd; batches are stored and \
            acknowledged meanwhile
            """])

        let complete = try configuration(metrc: "base_url = \"https://api-ca.metrc.com\"\nvendor_key_file = \"v\"\ndefault_key_file = \"d\"")
        #expect(MetrcCredentials.load(complete, environment: [:]).uploadGaps(complete).isEmpty)
    }
}
