// Switch tests live here.
import XCTest
@testable import Switch
