// switchd (CLI and config) tests live here.
import XCTest
