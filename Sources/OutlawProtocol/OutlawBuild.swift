/// The version every outlawd executable reports (`--version`, `outlawctl status --json`, the device `welcome`).
public enum OutlawBuild {
    /// scripts/package reads this line with sed for the package's version: keep it one string literal.
    public static let version = "0.1.0"
}
