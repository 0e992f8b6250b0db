// libFuzzer target: outlawd.toml text through TOMLParser.parse and DaemonConfiguration.parse, as
// DaemonConfiguration.load reads a file. Built by scripts/fuzz with `swiftc -sanitize=fuzzer,address`.
import OutlawConfig

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    // load refuses bytes that are not UTF-8 before parsing; decoding with replacement instead lets every input
    // reach the parser, and any text it yields is also a valid UTF-8 file.
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let tomlError: TOMLError?
    do {
        _ = try TOMLParser.parse(text)
        tomlError = nil
    } catch {
        tomlError = error
    }
    do {
        let config = try DaemonConfiguration.parse(text, file: "/etc/outlawd/outlawd.toml", relativeTo: "/etc/outlawd")
        // Derived values the daemon reads at start.
        _ = config.server.unauthenticatedLimit
        _ = config.facility.licenses
        guard tomlError == nil else { fatalError("the configuration parsed although the TOML did not: \(tomlError!)") }
    } catch {
        _ = error.description
        if let tomlError, error.problem != "line \(tomlError.line): \(tomlError.message)" {
            fatalError("a TOML error became \(error), not line \(tomlError.line): \(tomlError.message)")
        }
    }
    return 0
}
