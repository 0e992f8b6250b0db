import Foundation
import OutlawProtocol

/// Metrc's field names differ in case between states (`LocationName` vs `locationName`): look them up
/// exactly first, then ignoring case.
extension Dictionary where Key == String, Value == JSONValue {
    public func field(_ name: String) -> JSONValue? {
        if let exact = self[name] { return exact }
        let lowered = name.lowercased()
        return first { $0.key.lowercased() == lowered }?.value
    }

    /// The first of `names` present and not null.
    public func field(anyOf names: [String]) -> JSONValue? {
        for name in names {
            if let value = field(name), !value.isNull { return value }
        }
        return nil
    }
}

extension JSONValue {
    /// A whole number, also when Metrc writes it as a string.
    var int64Value: Int64? {
        switch self {
        case .number(let n):
            guard n.isFinite, n.rounded() == n, abs(n) < 9.0e15 else { return nil }
            return Int64(n)
        case .string(let s):
            return Int64(s.trimmingCharacters(in: .whitespaces))
        default:
            return nil
        }
    }
}
