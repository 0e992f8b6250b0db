import OutlawKeys
import OutlawStore
import Upload

// Here rather than in OutlawKeys: the answer is the uploader's signing policy, and outlawctl, which links
// OutlawKeys, needs nothing of the uploader.
extension KeyService {
    /// The `login` answer's `metrc_key` for a user.
    func loginStatus(_ user: User) async -> String {
        let status = try? await store.keyStatus(userID: user.id)
        return SigningPolicy.loginStatus(personalKey: status, requirePersonalKeys: requirePersonalKeys)
    }
}
