/// The naming rules a device's words must meet before anything logs, stores or counts them, and how a value
/// that breaks them is shown in a log line: cut, with its length.
public enum Names {
    /// Longest login ticket accepted in a batch (ours are 43 characters).
    public static let maxTicketBytes = 256
    /// How much of a refused value a log line shows.
    public static let shownCharacters = 64

    /// `device`: 1–64 characters of `A-Z a-z 0-9 . _ -`.
    public static func isValidDeviceName(_ name: String) -> Bool {
        let u = name.utf8
        return (1...64).contains(u.count) && u.allSatisfy {
            ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 95 || $0 == 45
        }
    }

    /// A user name as it may arrive: 1–64 printable characters (no control characters, no line breaks).
    public static func isValidUserName(_ name: String) -> Bool {
        guard (1...256).contains(name.utf8.count) else { return false }
        var count = 0
        for scalar in name.unicodeScalars {
            if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .lineSeparator
                || scalar.properties.generalCategory == .paragraphSeparator || scalar.properties.generalCategory == .format
            {
                return false
            }
            count += 1
        }
        return (1...64).contains(name.count) && count > 0
    }

    /// A value from the network as a log line may show it: at most `shownCharacters`, control characters
    /// replaced, and when cut, its full length in bytes.
    public static func shown(_ value: String?) -> String {
        guard let value else { return "" }
        var out = ""
        var shown = 0
        for character in value {
            if shown == shownCharacters {
                return out + "… (\(value.utf8.count) bytes)"
            }
            let printable = character.unicodeScalars.allSatisfy { $0.properties.generalCategory != .control && $0.properties.generalCategory != .format }
            out.append(printable ? character : "?")
            shown += 1
        }
        return out
    }
}
