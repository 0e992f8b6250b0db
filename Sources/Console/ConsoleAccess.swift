import OutlawStore

/// The console's pages.
public enum ConsolePage: String, Sendable, CaseIterable {
    case settings, users, keys, review, failed, status

    /// The navigation's label.
    var title: String {
        switch self {
        case .settings: "Settings"
        case .users: "Users"
        case .keys: "Keys"
        case .review: "Review"
        case .failed: "Failed"
        case .status: "Status"
        }
    }
}

/// Who may see and do what in the console. Pure: the rule the routes ask, and the tests check.
///
/// Outlaw's rule: Console and Admin people set their own key on Settings; an Admin sets anyone's on Users. The User
/// role works on handhelds only: it sees no page that changes anything (a 403 page on Settings and Users).
public enum ConsoleAccess {
    public static func canSee(_ page: ConsolePage, role: Role) -> Bool {
        switch page {
        case .settings: role == .console || role == .admin
        // A Console person sees only themselves there; only an Admin sees and changes everyone.
        case .users: role == .console || role == .admin
        case .keys, .review, .failed: role == .console || role == .admin
        case .status: true
        }
    }

    /// Setting or clearing `target`'s personal key: an Admin for anyone, a Console person for themselves.
    public static func canSetKey(actor: User, target: String) -> Bool {
        guard actor.active else { return false }
        switch actor.role {
        case .admin: return true
        case .console: return actor.name == target
        case .user: return false
        }
    }

    /// Adding, disabling, re-enabling users and resetting PINs: Admin only.
    public static func canManageUsers(_ actor: User) -> Bool { actor.active && actor.role == .admin }

    /// Approving, rejecting and replaying: Console and Admin (the people who run the console).
    public static func canDecide(_ actor: User) -> Bool { actor.active && (actor.role == .admin || actor.role == .console) }

    /// The pages in the navigation for `role`.
    public static func pages(for role: Role) -> [ConsolePage] { ConsolePage.allCases.filter { canSee($0, role: role) } }
}
