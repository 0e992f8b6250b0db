import Foundation
import Testing
@testable import MetrcSandbox

@Suite("Pure parts: JSON, dates, paging, windows")
struct PureLogicTests {
    @Test func jsonRoundTripsAndReadsFieldsCaseInsensitively() throws {
        let parsed = try #require(JSONValue.parse(#"[{"label":"X","Quantity":-2.5,"Ok":true,"N":null,"Nested":{"a":[1,2]}}]"#))
        let row = try #require(parsed[0])
        #expect(row[field: "Label"]?.stringValue == "X")
        #expect(row[field: "QUANTITY"]?.doubleValue == -2.5)
        #expect(row[field: "ok"]?.boolValue == true)
        #expect(row[field: "n"]?.isNull == true)
        #expect(row[field: "missing"] == nil)
        #expect(JSONValue.parse(parsed.serialized) == parsed)
        #expect(JSONValue.parse("{not json") == nil)
        let object: JSONValue = ["b": 1, "a": "q\"uote\n"]
        #expect(object.serialized == #"{"a":"q\"uote\n","b":1}"#)
        #expect(JSONValue.number(2.25).serialized == "2.25")
    }

    @Test func metrcDayAcceptsOnlyRealCalendarDays() {
        #expect(MetrcDay("2024-02-29")?.description == "2024-02-29")
        #expect(MetrcDay("2025-02-29") == nil)
        #expect(MetrcDay("2025-13-01") == nil)
        #expect(MetrcDay("2025-1-01") == nil)
        #expect(MetrcDay("2025-01-01T00:00:00Z") == nil)
        #expect(MetrcDay("01/02/2025") == nil)
        #expect(MetrcDay("2025-06-01")! < MetrcDay("2025-06-02")!)
        #expect(MetrcDay("2025-12-31")!.adding(days: 1).description == "2026-01-01")
        #expect(MetrcDay(Date(timeIntervalSince1970: 86_400 * 365)).description == "1971-01-01")
    }

    @Test func timestampsParseZonesAndFractionsAndFormatAsMetrc() throws {
        let utc = try #require(MetrcTimestamp.parse("2025-06-01T10:00:00Z"))
        #expect(utc.timeIntervalSince1970 == 1_748_772_000)
        #expect(MetrcTimestamp.parse("2025-06-01T12:00:00+02:00") == utc)
        #expect(MetrcTimestamp.parse("2025-06-01T10:00:00") == utc)
        #expect(MetrcTimestamp.parse("2025-06-01T10:00:00.5Z")?.timeIntervalSince1970 == 1_748_772_000.5)
        #expect(MetrcTimestamp.parse("2025-06-01")?.timeIntervalSince1970 == 1_748_736_000)
        #expect(MetrcTimestamp.parse("2025-06-01T25:00:00Z") == nil)
        #expect(MetrcTimestamp.parse("yesterday") == nil)
        #expect(MetrcTimestamp.format(utc) == "2025-06-01T10:00:00+00:00")
        #expect(MetrcTimestamp.format(utc.addingTimeInterval(0.25)) == "2025-06-01T10:00:00.250000+00:00")
    }

    @Test func pageRequestsFollowMetrcRules() throws {
        #expect(try PageRequest.parse(QueryParameters()) == nil)
        #expect(try PageRequest.parse(QueryParameters(["pagenumber": "2"])) == PageRequest(pageNumber: 2, pageSize: 20))
        #expect(try PageRequest.parse(QueryParameters(["pageSize": "5"])) == PageRequest(pageNumber: 1, pageSize: 5))
        #expect(throws: MetrcError.self) { try PageRequest.parse(QueryParameters(["pageSize": "21"])) }
        #expect(throws: MetrcError.self) { try PageRequest.parse(QueryParameters(["pageNumber": "0"])) }
        #expect(throws: MetrcError.self) { try PageRequest.parse(QueryParameters(["pageSize": "ten"])) }
    }

    @Test func envelopeCountsPagesAndSlices() {
        let items = (1...45).map { JSONValue.int($0) }
        let third = pageEnvelope(items, page: PageRequest(pageNumber: 3, pageSize: 20))
        #expect(third[field: "Data"]?.arrayValue == (41...45).map { JSONValue.int($0) })
        #expect(third[field: "Total"]?.intValue == 45)
        #expect(third[field: "TotalRecords"]?.intValue == 45)
        #expect(third[field: "TotalPages"]?.intValue == 3)
        #expect(third[field: "RecordsOnPage"]?.intValue == 5)
        #expect(third[field: "Page"]?.intValue == 3)
        #expect(third[field: "CurrentPage"]?.intValue == 3)
        #expect(third[field: "PageSize"]?.intValue == 20)
        let beyond = pageEnvelope(items, page: PageRequest(pageNumber: 9, pageSize: 20))
        #expect(beyond[field: "Data"]?.arrayValue?.isEmpty == true)
        let unpaged = pageEnvelope(items, page: nil)
        #expect(unpaged[field: "Data"]?.arrayValue?.count == 45)
        #expect(unpaged[field: "TotalPages"]?.intValue == 1)
        #expect(unpaged[field: "PageSize"]?.intValue == 45)
    }

    @Test func windowsAreInclusiveAndChecked() throws {
        let window = try ModifiedWindow.parse(QueryParameters([
            "lastModifiedStart": "2025-06-01T00:00:00Z", "lastModifiedEnd": "2025-06-01T01:00:00Z",
        ]))
        let start = MetrcTimestamp.parse("2025-06-01T00:00:00Z")!
        #expect(window.contains(start))
        #expect(window.contains(start.addingTimeInterval(3600)))
        #expect(!window.contains(start.addingTimeInterval(3600.001)))
        #expect(!window.contains(start.addingTimeInterval(-1)))
        #expect(throws: MetrcError.self) {
            try ModifiedWindow.parse(QueryParameters(["lastModifiedStart": "2025-06-02T00:00:00Z", "lastModifiedEnd": "2025-06-01T00:00:00Z"]))
        }
        #expect(throws: MetrcError.self) { try ModifiedWindow.parse(QueryParameters(["lastModifiedStart": "June"])) }
        #expect(try ModifiedWindow.parse(QueryParameters()) == ModifiedWindow())
    }

    @Test func queryParametersDecodeAndIgnoreCase() {
        let query = QueryParameters(query: "LicenseNumber=LIC-0001&note=a%20b+c&empty=")
        #expect(query["licenseNumber"] == "LIC-0001")
        #expect(query["NOTE"] == "a b c")
        #expect(query.nonEmpty("empty") == nil)
        #expect(query["absent"] == nil)
    }

    @Test func basicCredentialsParse() {
        let header = BasicCredentials(vendorKey: "v", userKey: "u:with:colons").headerValue
        #expect(BasicCredentials.parse(authorization: header) == BasicCredentials(vendorKey: "v", userKey: "u:with:colons"))
        #expect(BasicCredentials.parse(authorization: nil) == nil)
        #expect(BasicCredentials.parse(authorization: "Bearer abc") == nil)
        #expect(BasicCredentials.parse(authorization: "Basic !!!") == nil)
    }

    @Test func routerResolvesMetrcPathsAndRefusesOthers() throws {
        #expect(try MetrcRoute.resolve(method: "GET", path: "/facilities/v2/").get() == .facilities)
        #expect(try MetrcRoute.resolve(method: "GET", path: "/Plants/V2/Vegetative").get() == .vegetativePlants)
        #expect(try MetrcRoute.resolve(method: "DELETE", path: "/plants/v2/").get() == .write(.destroyPlants))
        #expect(try MetrcRoute.resolve(method: "POST", path: "/packages/v2/adjust").get() == .write(.adjustPackages))
        #expect(try MetrcRoute.resolve(method: "GET", path: "/plants/v2/1a4ff0100000022000000001").get()
            == .plant(label: "1A4FF0100000022000000001"))
        if case .failure(let error) = MetrcRoute.resolve(method: "GET", path: "/plants/v2/harvest") {
            #expect(error.status == 405)
        } else {
            Issue.record("GET on a write path must be refused")
        }
        if case .failure(let error) = MetrcRoute.resolve(method: "GET", path: "/plants/v1/active") {
            #expect(error.status == 404)
        } else {
            Issue.record("unknown path must be 404")
        }
        #expect(MetrcRoute.facilities.requiresLicense == false)
        #expect(MetrcRoute.unitsOfMeasure.requiresLicense == false)
        #expect(MetrcRoute.plantWasteMethods.requiresLicense == false)
        #expect(MetrcRoute.vegetativePlants.requiresLicense)
        #expect(MetrcRoute.write(.harvestPlants).permission == .harvestPlants)
    }

    @Test func writeBodyMustBeANonEmptyArrayWithinTheLimit() throws {
        #expect(try parseWriteBody(Array("[{}]".utf8), objectLimit: 1).count == 1)
        #expect(throws: MetrcError(status: 413, message: "Too many objects in one request: 2 (at most 1).")) {
            try parseWriteBody(Array("[{},{}]".utf8), objectLimit: 1)
        }
        #expect(throws: MetrcError.self) { try parseWriteBody(Array("{}".utf8), objectLimit: 10) }
        #expect(throws: MetrcError.self) { try parseWriteBody(Array("[]".utf8), objectLimit: 10) }
        #expect(throws: MetrcError.self) { try parseWriteBody(Array("[".utf8), objectLimit: 10) }
        #expect(throws: MetrcError.self) { try parseWriteBody([], objectLimit: 10) }
    }
}
