import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the handheld writes: the report on stdout; notes and progress on stdout too, or on stderr with
/// `--json` so stdout stays one JSON document. Written unbuffered, so notes and progress keep their order.
final class Console {
    private let notes: FileHandle
    private let notesAreTerminal: Bool
    /// The last progress line shown and when, to show at most a few a second.
    private var shown: (text: String, at: Date)?
    private var lineOpen = false

    init(json: Bool) {
        notes = json ? FileHandle.standardError : FileHandle.standardOutput
        notesAreTerminal = isatty(json ? 2 : 1) == 1
    }

    /// A line of narration.
    func note(_ text: String) {
        closeProgress()
        notes.write(Data((text + "\n").utf8))
    }

    /// The progress line: rewritten in place on a terminal, else printed again only when it changed.
    func progress(_ text: String, force: Bool = false) {
        let now = Date()
        if let shown, shown.text == text { return }
        if let shown, !force, now.timeIntervalSince(shown.at) < (notesAreTerminal ? 0.2 : 0.5) { return }
        shown = (text, now)
        if notesAreTerminal {
            notes.write(Data(("\r\u{1B}[K" + text).utf8))
            lineOpen = true
        } else {
            notes.write(Data((text + "\n").utf8))
        }
    }

    /// Ends an in-place progress line so the next output starts on its own line.
    func closeProgress() {
        if lineOpen { notes.write(Data("\n".utf8)) }
        lineOpen = false
    }

    /// The result, on stdout.
    func result(_ text: String) {
        closeProgress()
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    func error(_ text: String) {
        closeProgress()
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
