import DeviceServer
import OutlawKeys
import OutlawStore
import Upload

// Here rather than in OutlawKeys: the answer is the uploader's signing policy, and outlawctl, which links
// OutlawKeys, needs nothing of the uploader.
extension KeyService {
    /// The `login` answer's `metrc_key` for a user; with a personal key that signs (`personal`), also
    /// `key_expires` (its expected expiry day, `KeyHealthPolicy`) and `key_checked_at` (when Metrc last accepted it).
    func loginStatus(_ user: User, policy: KeyHealthPolicy) async -> LoginKey {
        let health = try? await store.keyHealth(userID: user.id)
        let metrcKey = SigningPolicy.loginStatus(personalKey: health?.status, requirePersonalKeys: requirePersonalKeys)
        guard let health, metrcKey == .personal else { return LoginKey(metrcKey: metrcKey) }
        return LoginKey(metrcKey: metrcKey, expires: policy.day(policy.expectedExpiry(KeyFacts(health))), checkedAt: health.acceptedAt)
    }
}
