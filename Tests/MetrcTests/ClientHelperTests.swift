import Foundation
@testable import Metrc
import OutlawProtocol
import Testing

@Suite("Client helpers (pure)")
struct ClientHelperTests {
    @Test func basicAuthorizationIsVendorThenUser() {
        // base64("vendor:user")
        #expect(MetrcClient.basicAuthorization("vendor", "user") == "Basic dmVuZG9yOnVzZXI=")
    }

    @Test func queryIsPercentEncoded() {
        #expect(MetrcClient.queryString([]) == "")
        #expect(MetrcClient.queryString([("licenseNumber", "LIC 1&2"), ("lastModifiedStart", "2025-06-01T00:00:00Z")])
            == "?licenseNumber=LIC%201%262&lastModifiedStart=2025-06-01T00:00:00Z")
    }

    @Test func windowTimestampsRoundOutward() {
        let date = Date(timeIntervalSince1970: 1_748_736_000.4)   // 2025-06-01T00:00:00.4Z
        #expect(MetrcWindowTimestamp.format(date, roundingUp: false) == "2025-06-01T00:00:00Z")
        #expect(MetrcWindowTimestamp.format(date, roundingUp: true) == "2025-06-01T00:00:01Z")
        #expect(MetrcWindowTimestamp.format(Date(timeIntervalSince1970: 1_748_822_399), roundingUp: true) == "2025-06-01T23:59:59Z")
    }

    @Test func adjustmentDecodingIgnoresCaseAndKnowsMetrcNames() throws {
        let sandboxStyle: [String: JSONValue] = [
            "Id": 7, "PackageLabel": "TAG", "Quantity": -2, "UnitOfMeasureName": "Grams",
            "AdjustmentReasonName": "Drying", "AdjustmentDate": "2026-11-28", "ReasonNote": nil,
        ]
        #expect(try MetrcClient.adjustment(sandboxStyle) == .init(id: 7, packageLabel: "TAG", quantity: -2, unit: "Grams",
                                                                  reason: "Drying", date: "2026-11-28", note: nil))
        let otherState: [String: JSONValue] = [
            "id": 8, "packageLabel": "TAG", "adjustmentQuantity": 1.5, "adjustmentUnitOfMeasureName": "Ounces",
            "adjustmentReasonName": "Scale Variance", "adjustmentDate": "2026-11-28T00:00:00", "adjustmentNote": "scale",
        ]
        #expect(try MetrcClient.adjustment(otherState) == .init(id: 8, packageLabel: "TAG", quantity: 1.5, unit: "Ounces",
                                                                reason: "Scale Variance", date: "2026-11-28", note: "scale"))
        #expect(throws: MetrcReadError.self) { try MetrcClient.adjustment(["Id": 9, "PackageLabel": "TAG"]) }
    }

    @Test func caseInsensitiveFieldLookup() {
        let fields: [String: JSONValue] = ["locationName": "Vault", "Name": "exact"]
        #expect(fields.field("LocationName") == "Vault")
        #expect(fields.field("name") == "exact")
        #expect(fields.field("Missing") == nil)
        #expect(fields.field(anyOf: ["Missing", "LOCATIONNAME"]) == "Vault")
    }
}
