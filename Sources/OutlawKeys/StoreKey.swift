import Foundation
import OutlawConfig
import OutlawStore

/// Finds the store key that seals personal Metrc keys: the systemd credential `outlawd-store-key` when the
/// daemon has one (its dynamic user cannot read root's files), else `store.key_file` (as outlawctl, run by root, does).
public enum StoreKey {
    /// nil when none is configured (keys are then kept unsealed); a configured but unusable key is an error.
    public static func load(_ configuration: DaemonConfiguration,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> KeySeal?
    {
        let file = configuration.file ?? "configuration"
        if let dir = environment["CREDENTIALS_DIRECTORY"], let data = FileManager.default.contents(atPath: dir + "/outlawd-store-key") {
            guard let seal = KeySeal(text: String(decoding: data, as: UTF8.self)) else {
                throw ConfigError(file: file, key: nil, problem: "credential outlawd-store-key must hold 32 bytes as hex or base64")
            }
            return seal
        }
        if let path = configuration.store.keyFile {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigError(file: file, key: "store.key_file", problem: "cannot read \(path)")
            }
            guard let seal = KeySeal(text: String(decoding: data, as: UTF8.self)) else {
                throw ConfigError(file: file, key: "store.key_file", problem: "\(path) must hold 32 bytes as 64 hex characters or base64 (openssl rand -hex 32)")
            }
            return seal
        }
        return nil
    }
}
