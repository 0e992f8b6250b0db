import Foundation
import OutlawKeys
import OutlawProtocol
import OutlawStore
import Testing

/// Personal keys need a store key to be sealed with, unless the operator allows keeping them unsealed.
@Suite("Key service and the store key")
struct KeyServiceTests {
    /// A folder under /tmp, removed with the suite's instance.
    final class Folder: Sendable {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("outlawd-keyservice-\(UUID().uuidString.prefix(8))")
        deinit { try? FileManager.default.removeItem(at: url) }
    }

    let folder = Folder()
    var directory: URL { folder.url }

    /// A store with an admin and jane; `seal` is the store key, if any.
    func store(seal: KeySeal?) throws -> Store {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try Store(path: directory.appendingPathComponent("outlawd.sqlite").path, pinRounds: 1000, seal: seal)
        try store.addUser(name: "admin", role: .admin, pin: "0000", actor: "test")
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        return store
    }

    @Test func withoutAStoreKeyAKeyIsRefused() async throws {
        let store = try store(seal: nil)
        // No Metrc client: were the key taken, it would be stored unverified.
        let service = KeyService(store: store, client: nil, requirePersonalKeys: false)
        let error = await #expect(throws: StoreError.self) {
            try await service.set(user: "jane", key: "jane-metrc-key-0001", actor: "admin")
        }
        #expect(error?.description == KeyService.noStoreKeyMessage)
        #expect(KeyService.noStoreKeyMessage.contains("[store] allow_unsealed_keys = true"))
        #expect(try store.userKeys().isEmpty)

        // The device protocol's set_key: a bad_request answer with the message.
        let answer = await service.handle(.init(actor: "admin", pin: "0000", user: "jane", key: .set("jane-metrc-key-0001")))
        #expect(answer == Reply(op: "set_key", [("user", "jane"), ("ok", false), ("code", "bad_request"),
                                               ("message", .string(KeyService.noStoreKeyMessage))]))
        #expect(try store.userKeys().isEmpty)
        // Clearing needs no store key.
        let clear = await service.handle(.init(actor: "admin", pin: "0000", user: "jane", key: .clear))
        #expect(clear["code"] == .string("bad_request"))
        #expect(clear["message"] == .string("jane has no personal Metrc key"))
    }

    @Test func allowedUnsealedKeysAreKeptInTheClear() async throws {
        let store = try store(seal: nil)
        let service = KeyService(store: store, client: nil, requirePersonalKeys: false, allowUnsealedKeys: true)
        #expect(try await service.set(user: "jane", key: "jane-metrc-key-0001", actor: "admin") == .stored(verified: false))
        let jane = try #require(try store.user(named: "jane"))
        #expect(try store.signingKeys(userIDs: [jane.id])[jane.id]?.key == "jane-metrc-key-0001")
    }

    @Test func withAStoreKeyKeysAreTakenAndSealed() async throws {
        let seal = try #require(KeySeal(text: String(repeating: "5e", count: 32)))
        let store = try store(seal: seal)
        let service = KeyService(store: store, client: nil, requirePersonalKeys: false)
        let answer = await service.handle(.init(actor: "admin", pin: "0000", user: "jane", key: .set("jane-metrc-key-0001")))
        #expect(answer["ok"] == .bool(true), "\(answer.line)")
        let jane = try #require(try store.user(named: "jane"))
        #expect(try store.signingKeys(userIDs: [jane.id])[jane.id]?.key == "jane-metrc-key-0001")
        let file = try Data(contentsOf: directory.appendingPathComponent("outlawd.sqlite"))
            + ((try? Data(contentsOf: directory.appendingPathComponent("outlawd.sqlite-wal"))) ?? Data())
        #expect(file.range(of: Data("jane-metrc-key-0001".utf8)) == nil)
    }
}
