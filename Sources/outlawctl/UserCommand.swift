import ArgumentParser
import OutlawStore

extension Role: ExpressibleByArgument {}

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Add, list and disable users; set PINs.",
        subcommands: [Add.self, List.self, Disable.self, SetPIN.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user; the PIN is read from stdin.")
        @OptionGroup var options: ConfigOptions
        @Argument var name: String
        @Option(name: .long, help: "admin, console or user.") var role: Role

        func run() throws {
            let pin = try readSecret(prompt: "PIN for \(name): ")
            try options.openStore().addUser(name: name, role: role, pin: pin, actor: operatorName())
            print("user \(name) added (\(role.rawValue))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: ConfigOptions
        @Flag(name: .long, help: "JSON output.") var json = false

        func run() throws {
            let users = try options.openStore().users()
            if json { return try printJSON(users) }
            print(table(["USER", "ROLE", "ACTIVE", "CREATED"], users.map {
                [$0.name, $0.role.rawValue, $0.active ? "yes" : "no", formatDate($0.createdAt)]
            }))
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user: logins and new batches are refused.")
        @OptionGroup var options: ConfigOptions
        @Argument var name: String

        func run() throws {
            try options.openStore().disableUser(name: name, actor: operatorName())
            print("user \(name) disabled")
        }
    }

    struct SetPIN: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-pin", abstract: "Set a user's PIN (read from stdin); lifts a lockout.")
        @OptionGroup var options: ConfigOptions
        @Argument var name: String

        func run() throws {
            let pin = try readSecret(prompt: "New PIN for \(name): ")
            try options.openStore().setPIN(name: name, pin: pin, actor: operatorName())
            print("PIN of \(name) changed")
        }
    }
}
