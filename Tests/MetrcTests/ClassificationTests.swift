import Metrc
import Testing

@Suite("HTTP answer → MetrcResponse (pure)")
struct ClassificationTests {
    func classify(_ status: Int, _ body: String = "", retryAfter: String? = nil) -> MetrcResponse {
        MetrcResponse.classify(status: status, retryAfter: retryAfter, body: Array(body.utf8))
    }

    @Test func successes() {
        #expect(classify(200, #"{"Ids":[10151,10152],"Warnings":null}"#) == .accepted(ids: [10151, 10152]))
        #expect(classify(200, #"{"ids":[7]}"#) == .accepted(ids: [7]))
        #expect(classify(200) == .accepted(ids: []))
        #expect(classify(204) == .accepted(ids: []))
        #expect(classify(200, "<html>ok</html>") == .accepted(ids: []))
        #expect(classify(200, #"{"Ids":null}"#) == .accepted(ids: []))
    }

    @Test func rowErrorsInAnyCase() {
        #expect(classify(400, #"[{"row":0,"message":"Tag A is not valid."},{"Row":2,"Message":"B"}]"#)
            == .rejected([MetrcRowError(row: 0, message: "Tag A is not valid."), MetrcRowError(row: 2, message: "B")]))
        #expect(classify(400, #"[{"message":"no row"},"plain text"]"#)
            == .rejected([MetrcRowError(row: nil, message: "no row"), MetrcRowError(row: nil, message: "plain text")]))
        #expect(classify(400, "[]") == .rejected([]))
    }

    @Test func serverFaults() {
        #expect(classify(400, #"{"Message":"An error has occurred."}"#) == .serverFault(status: 400, message: "An error has occurred."))
        #expect(classify(400, #"{"message":"lower"}"#) == .serverFault(status: 400, message: "lower"))
        #expect(classify(400, "<html>bad</html>") == .serverFault(status: 400, message: "<html>bad</html>"))
        #expect(classify(500, #"{"Message":"boom"}"#) == .serverFault(status: 500, message: "boom"))
        #expect(classify(503) == .serverFault(status: 503, message: "HTTP 503"))
        #expect(classify(302) == .serverFault(status: 302, message: "HTTP 302"))
        #expect(classify(405, #"{"Message":"no"}"#) == .serverFault(status: 405, message: "no"))
    }

    @Test func otherStatuses() {
        #expect(classify(401) == .unauthorized(status: 401))
        #expect(classify(401, "<html><body>Unauthorized</body></html>") == .unauthorized(status: 401))
        #expect(classify(403, #"{"Message":"Forbidden"}"#) == .unauthorized(status: 403))
        #expect(classify(413, #"{"Message":"too many"}"#) == .tooLarge)
        #expect(classify(404, #"{"Message":"Plant X was not found."}"#) == .notFound(message: "Plant X was not found."))
        #expect(classify(404) == .notFound(message: "Not Found"))
    }

    @Test func retryAfter() {
        #expect(classify(429, retryAfter: "3") == .rateLimited(retryAfter: 3))
        #expect(classify(429, retryAfter: " 1.5 ") == .rateLimited(retryAfter: 1.5))
        #expect(classify(429) == .rateLimited(retryAfter: nil))
        #expect(classify(429, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT") == .rateLimited(retryAfter: nil))
        #expect(classify(429, retryAfter: "-4") == .rateLimited(retryAfter: nil))
    }
}
