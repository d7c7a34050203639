// NetworkTableOptions: the arguments and output of the commands that show one network's table (`fdb`, `leases`).
import ArgumentParser

/// `NETWORK [--json]` and where the daemon is; prints rows as JSON, as a "none" line, or as a table.
struct NetworkTableOptions: ParsableArguments {
    @Argument(help: "The network.")
    var network: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var locate: LocateOptions

    /// Prints `rows` as pretty JSON with `--json`, else `empty` when there are none, else `table(rows)`.
    func show<Row: Encodable>(_ rows: [Row], empty: String, table: ([Row]) -> String) {
        if json {
            print(StatusReport.prettyJSON(rows))
        } else if rows.isEmpty {
            print(empty)
        } else {
            print(table(rows), terminator: "")
        }
    }
}
