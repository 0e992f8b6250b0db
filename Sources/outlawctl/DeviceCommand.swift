import ArgumentParser
import OutlawStore

struct DeviceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "Add, list and disable handheld devices.",
        subcommands: [Add.self, List.self, Disable.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a device; prints its token (shown only this once).")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "Device name: 1-64 of A-Z a-z 0-9 . _ -") var name: String

        func run() throws {
            let token = try options.openStore().addDevice(name: name, actor: operatorName())
            print(token)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List devices.")
        @OptionGroup var options: ConfigOptions
        @Flag(name: .long, help: "JSON output.") var json = false

        func run() throws {
            let devices = try options.openStore().devices()
            if json { return try printJSON(devices) }
            print(table(["DEVICE", "ACTIVE", "CREATED", "LAST SEEN"], devices.map {
                [$0.name, $0.active ? "yes" : "no", formatDate($0.createdAt), formatDate($0.lastSeenAt)]
            }))
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a device: it can no longer connect.")
        @OptionGroup var options: ConfigOptions
        @Argument var name: String

        func run() throws {
            try options.openStore().disableDevice(name: name, actor: operatorName())
            print("device \(name) disabled")
        }
    }
}
