import Foundation
import GRDB
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// Sealed personal keys bound to their user (`sealed:v2:`), the v1 values older stores hold, and the PIN pepper.
@Suite("Key seal")
struct KeySealTests {
    let dir: TempDirectory
    let seal: KeySeal

    init() throws {
        dir = try TempDirectory("outlawd-keyseal")
        seal = try #require(KeySeal(text: String(repeating: "ab", count: 32)))
    }

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

    /// A store with jane and john, sealed with `seal`.
    func store(_ name: String = "outlawd.sqlite") throws -> (Store, jane: Int64, john: Int64) {
        let store = try Store(path: dir.file(name), pinRounds: 1000, seal: seal)
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        try store.addUser(name: "john", role: .user, pin: "1357", actor: "test")
        return (store, try #require(try store.user(named: "jane")).id, try #require(try store.user(named: "john")).id)
    }

    func storedKey(_ store: Store, userID: Int64) throws -> String? {
        try store.pool.read { db in try String.fetchOne(db, sql: "SELECT key FROM user_keys WHERE user_id = ?", arguments: [userID]) }
    }

    func setStoredKey(_ store: Store, userID: Int64, _ value: String) throws {
        try store.pool.write { db in try db.execute(sql: "UPDATE user_keys SET key = ? WHERE user_id = ?", arguments: [value, userID]) }
    }

    @Test func v2RoundTripIsBoundToTheUser() throws {
        let sealed = try seal.seal("jane-metrc-key-0001", userID: 7)
        #expect(sealed.hasPrefix("sealed:v2:"))
        #expect(KeySeal.isSealed(sealed) && KeySeal.isCurrent(sealed))
        #expect(try seal.open(sealed, userID: 7) == "jane-metrc-key-0001")
        #expect(try seal.seal("jane-metrc-key-0001", userID: 7) != sealed, "a fresh nonce each time")
        // Another user's id, or another store key: no key, and a message that says why.
        let error = #expect(throws: StoreError.self) { try seal.open(sealed, userID: 8) }
        #expect(error?.description.contains("sealed for another user") == true)
        let other = try #require(KeySeal(text: String(repeating: "cd", count: 32)))
        #expect(throws: StoreError.self) { try other.open(sealed, userID: 7) }
        // Plain values pass through; a format this version does not know is not taken for a key.
        #expect(try seal.open("plain-key-123", userID: 7) == "plain-key-123")
        #expect(throws: StoreError.self) { try seal.open("sealed:v9:AAAA", userID: 7) }
    }

    @Test func associatedDataIsAuthenticated() throws {
        let key = Data(repeating: 3, count: 32)
        let aad = KeySeal.associatedData(userID: 12)
        #expect(aad == Data("outlawd user key v2\u{0}12".utf8))
        let combined = try LibCrypto.sealAESGCM(Data("a Metrc key".utf8), key: key, aad: aad)
        #expect(LibCrypto.openAESGCM(combined, key: key, aad: aad) == Data("a Metrc key".utf8))
        #expect(LibCrypto.openAESGCM(combined, key: key, aad: KeySeal.associatedData(userID: 1)) == nil)
        #expect(LibCrypto.openAESGCM(combined, key: key) == nil, "sealed with associated data, opened without")
        var tamperedAAD = aad
        tamperedAAD[0] ^= 1
        #expect(LibCrypto.openAESGCM(combined, key: key, aad: tamperedAAD) == nil)
        // A v2 value relabelled v1 (to skip the user check) does not open either.
        let v2 = try seal.seal("jane-metrc-key-0001", userID: 7)
        let relabelled = "sealed:v1:" + v2.dropFirst("sealed:v2:".count)
        #expect(throws: StoreError.self) { try seal.open(relabelled, userID: 7) }
    }

    @Test func aSealedRowCopiedToAnotherUserDoesNotOpen() throws {
        let (store, jane, john) = try store()
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .ok, actor: "test")
        try store.setUserKey(user: "john", key: "john-metrc-key-0002", status: .ok, actor: "test")
        #expect(try storedKey(store, userID: jane)?.hasPrefix("sealed:v2:") == true)
        // Someone with write access to the file (but not the store key) gives john jane's Metrc identity.
        try store.pool.write { db in
            try db.execute(sql: "UPDATE user_keys SET key = (SELECT key FROM user_keys WHERE user_id = ?) WHERE user_id = ?",
                           arguments: [jane, john])
        }
        let error = #expect(throws: StoreError.self) { try store.signingKeys(userIDs: [john]) }
        #expect(error?.description.contains("user id \(john)") == true)
        #expect(error?.description.contains("sealed for another user") == true)
        #expect(try store.signingKeys(userIDs: [jane])[jane]?.key == "jane-metrc-key-0001")
        // Nor is it "upgraded" into john's: left as it is for signingKeys to report.
        #expect(try store.sealPlainKeys() == 0)
    }

    @Test func v1ValuesStillOpenAndAreSealedAgainAsV2() throws {
        let (store, jane, john) = try store()
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .ok, actor: "test")
        try store.setUserKey(user: "john", key: "john-metrc-key-0002", status: .ok, actor: "test")
        // As an older outlawd stored them.
        try setStoredKey(store, userID: jane, try seal.sealV1("jane-metrc-key-0001"))
        try setStoredKey(store, userID: john, try seal.sealV1("john-metrc-key-0002"))
        let keys = try store.signingKeys(userIDs: [jane, john])
        #expect(keys[jane]?.key == "jane-metrc-key-0001" && keys[john]?.key == "john-metrc-key-0002")

        // The next set writes v2 ...
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0003", status: .ok, actor: "test")
        #expect(try storedKey(store, userID: jane)?.hasPrefix("sealed:v2:") == true)
        #expect(try storedKey(store, userID: john)?.hasPrefix("sealed:v1:") == true)
        // ... and so does the daemon's start (sealPlainKeys), once.
        #expect(try store.sealPlainKeys() == 1)
        #expect(try store.sealPlainKeys() == 0)
        #expect(try storedKey(store, userID: john)?.hasPrefix("sealed:v2:") == true)
        let after = try store.signingKeys(userIDs: [jane, john])
        #expect(after[jane]?.key == "jane-metrc-key-0003" && after[john]?.key == "john-metrc-key-0002")
    }

    @Test func sealPlainKeysUpgradesPlainAndV1AndLeavesOtherStoreKeysAlone() throws {
        let (store, jane, john) = try store()
        try store.addUser(name: "ann", role: .user, pin: "2468", actor: "test")
        let ann = try #require(try store.user(named: "ann")).id
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .ok, actor: "test")
        try store.setUserKey(user: "john", key: "john-metrc-key-0002", status: .ok, actor: "test")
        try store.setUserKey(user: "ann", key: "ann-metrc-key-0004", status: .ok, actor: "test")
        let other = try #require(KeySeal(text: String(repeating: "cd", count: 32)))
        try setStoredKey(store, userID: jane, "jane-metrc-key-0001")
        try setStoredKey(store, userID: john, try seal.sealV1("john-metrc-key-0002"))
        try setStoredKey(store, userID: ann, try other.sealV1("ann-metrc-key-0004"))
        #expect(try store.sealPlainKeys() == 2)
        #expect(try storedKey(store, userID: jane)?.hasPrefix("sealed:v2:") == true)
        #expect(try storedKey(store, userID: john)?.hasPrefix("sealed:v2:") == true)
        #expect(try storedKey(store, userID: ann)?.hasPrefix("sealed:v1:") == true)
        #expect(try store.signingKeys(userIDs: [jane, john]).mapValues(\.key) == [jane: "jane-metrc-key-0001", john: "john-metrc-key-0002"])
        #expect(throws: StoreError.self) { try store.signingKeys(userIDs: [ann]) }
        #expect(try store.sealPlainKeys() == 0)
    }

    @Test func aKeyIsNeverStoredUnderTheSealedPrefix() throws {
        let (store, _, _) = try store()
        #expect(throws: StoreError.self) { try store.setUserKey(user: "jane", key: "sealed:v2:abcdefgh", status: .ok, actor: "test") }
    }

    @Test func hmacSHA256KnownAnswers() {
        // RFC 4231, test cases 1 and 2.
        #expect(Self.hex(LibCrypto.hmacSHA256(key: Data(repeating: 0x0b, count: 20), message: Data("Hi There".utf8)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(Self.hex(LibCrypto.hmacSHA256(key: Data("Jefe".utf8), message: Data("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func pinPepperComesFromTheStoreKey() throws {
        let pepper = seal.pinPepper
        #expect(pepper.count == 32)
        #expect(pepper == LibCrypto.hmacSHA256(key: seal.keyBytes, message: Data("outlawd PIN pepper v1".utf8)))
        #expect(try #require(KeySeal(text: String(repeating: "ab", count: 32))).pinPepper == pepper, "the same store key, the same pepper")
        let other = try #require(KeySeal(text: String(repeating: "cd", count: 32)))
        #expect(other.pinPepper != pepper)
        #expect(pepper != seal.keyBytes)
    }

    @Test func pepperedPINHashIsHMACOfThePBKDF2Hash() throws {
        let salt = Data(repeating: 9, count: 16)
        let plain = Secrets.pinHash("4821", salt: salt, rounds: 1000)
        let peppered = Secrets.pepperedPINHash("4821", salt: salt, rounds: 1000, pepper: seal.pinPepper)
        #expect(peppered.count == 32 && peppered != plain)
        // A verified old hash upgrades without running PBKDF2 again.
        #expect(Secrets.pepper(plain, with: seal.pinPepper) == peppered)
        #expect(peppered == LibCrypto.hmacSHA256(key: seal.pinPepper, message: plain))
        let other = try #require(KeySeal(text: String(repeating: "cd", count: 32)))
        #expect(Secrets.pepperedPINHash("4821", salt: salt, rounds: 1000, pepper: other.pinPepper) != peppered)
        #expect(Secrets.pepperedPINHash("4822", salt: salt, rounds: 1000, pepper: seal.pinPepper) != peppered)
    }
}
