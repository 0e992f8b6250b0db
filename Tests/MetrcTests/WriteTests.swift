import Foundation
import Metrc
import MetrcSandbox
import OutlawProtocol
import Testing

@Suite("The five writes against the sandbox")
struct WriteTests {
    @Test func harvestIsAppliedAndSignedByJane() async throws {
        try await withSandbox { server, client in
            let tag = SandboxDemo.floweringPlantTag(1)
            let result = await client.send(.harvestPlants, license: SandboxDemo.license,
                                           objects: [metrcObject(.plantHarvest, Events.harvest(tag, weight: 512.5))],
                                           userKey: SandboxDemo.janeKey)
            #expect(result == .accepted(ids: [10151]))
            let plant = await server.plant(label: tag)
            #expect(plant?.state == .harvested)
            #expect(plant?.harvestedWetWeight == 512.5)
            let read = try await client.list(path: "/plants/v2/\(tag)", license: SandboxDemo.license,
                                             userKey: SandboxDemo.janeKey, since: nil, until: nil)
            #expect(read.count == 1)
            #expect(read.first?["State"] == "Harvested")
            #expect(read.first?["HarvestedDate"] == .string(today))
            let writes = await server.writes()
            #expect(writes.map(\.userName) == ["jane"])
            #expect(writes.map(\.action) == [.harvestPlants])
            #expect(writes.map(\.method) == ["PUT"])
            #expect(await server.harvests(license: SandboxDemo.license).map(\.name) == ["\(today)-Drying Room-H"])
        }
    }

    @Test func plantMoveIsAppliedAndSignedByOwner() async throws {
        try await withSandbox { server, client in
            let tags = [SandboxDemo.plantTag(1), SandboxDemo.plantTag(2)]
            let result = await client.send(.movePlants, license: SandboxDemo.license,
                                           objects: tags.map { metrcObject(.plantMove, Events.movePlant($0, to: "Flower Room 1", sublocation: "Bench 4")) },
                                           userKey: SandboxDemo.ownerKey)
            #expect(result == .accepted(ids: [10001, 10002]))
            for tag in tags {
                let plant = await server.plant(label: tag)
                #expect(plant?.location == "Flower Room 1")
                #expect(plant?.sublocation == "Bench 4")
            }
            #expect(await server.writes().map(\.userName) == ["owner"])
        }
    }

    @Test func destroyUsesDeleteWithABody() async throws {
        try await withSandbox { server, client in
            let tag = SandboxDemo.plantTag(3)
            let result = await client.send(.destroyPlants, license: SandboxDemo.license,
                                           objects: [metrcObject(.plantDestroy, Events.destroy(tag, note: "mold on stems"))],
                                           userKey: SandboxDemo.janeKey)
            #expect(result == .accepted(ids: [10003]))
            let plant = await server.plant(label: tag)
            #expect(plant?.state == .destroyed)
            #expect(plant?.destroyedByUserName == "jane")
            #expect(plant?.destroyedNote == "mold on stems")
            let writes = await server.writes()
            #expect(writes.map(\.method) == ["DELETE"])
            #expect(writes.map(\.action) == [.destroyPlants])
        }
    }

    @Test func packageMoveIsApplied() async throws {
        try await withSandbox { server, client in
            let tag = SandboxDemo.packageTag(7)
            let result = await client.send(.movePackages, license: SandboxDemo.license,
                                           objects: [metrcObject(.packageMove, Events.movePackage(tag, to: "Processing Room"))],
                                           userKey: SandboxDemo.johnKey)
            #expect(result == .accepted(ids: [30007]))
            let package = await server.package(label: tag)
            #expect(package?.location == "Processing Room")
            #expect(package?.sublocation == nil)
            #expect(await server.writes().map(\.userName) == ["john"])
        }
    }

    @Test func adjustIsAppliedOncePerPost() async throws {
        try await withSandbox { server, client in
            let tag = SandboxDemo.packageTag(1)   // 101 g
            let result = await client.send(.adjustPackages, license: SandboxDemo.license,
                                           objects: [metrcObject(.packageAdjust, Events.adjust(tag, quantity: -2.5))],
                                           userKey: SandboxDemo.janeKey)
            guard case .accepted(let ids) = result else {
                Issue.record("expected accepted, got \(result)")
                return
            }
            #expect(ids.count == 1)
            #expect(await server.package(label: tag)?.quantity == 98.5)
            let adjustments = await server.adjustments(license: SandboxDemo.license)
            #expect(adjustments.map(\.adjustedByUserName) == ["jane"])
            #expect(adjustments.map { Int64($0.id) } == ids)
            #expect(await server.writes().map(\.method) == ["POST"])
        }
    }

    @Test func secondLicenseIsAddressedByLicenseNumber() async throws {
        try await withSandbox { server, client in
            let tag = SandboxDemo.secondLicensePackageTag(1)
            let object = metrcObject(.packageMove, Events.movePackage(tag, to: "Quarantine"))
            // The tag is not at LIC-0001: rejected there, accepted at LIC-0002.
            let wrong = await client.send(.movePackages, license: SandboxDemo.license, objects: [object], userKey: SandboxDemo.janeKey)
            guard case .rejected(let errors) = wrong else {
                Issue.record("expected rejected, got \(wrong)")
                return
            }
            #expect(errors.map(\.row) == [0])
            let right = await client.send(.movePackages, license: SandboxDemo.secondLicense, objects: [object], userKey: SandboxDemo.janeKey)
            #expect(right == .accepted(ids: [40001]))
            #expect(await server.package(label: tag, license: SandboxDemo.secondLicense)?.location == "Quarantine")
            #expect(await server.writes().map(\.license) == [SandboxDemo.secondLicense])
        }
    }
}
