// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

interface ITestAggregator {
    function decimals() external view returns (uint8);
    function description() external view returns (string memory);
    function version() external view returns (uint256);
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
    function getRoundData(uint80 roundId)
        external
        view
        returns (uint80, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

/// @title Test double of Chainlink's EACAggregatorProxy (phases, proxy round ids, V3 views).
/// @notice Written for margin-backtester's RPC adapter tests. Proxy round id = (phaseId << 64) | aggregator
/// round; every `confirmAggregator` starts a new phase, and `getRoundData` routes a proxy round id to the
/// phase's aggregator, so history across phases stays readable, as on mainnet. Like the production proxy
/// it emits no price events itself; newer proxies' AggregatorConfirmed is emitted on every switch.
contract TestAggregatorProxy {
    uint256 private constant PHASE_OFFSET = 64;

    event AggregatorConfirmed(address indexed previous, address indexed latest);

    address public immutable owner;
    uint16 public phaseId;
    mapping(uint16 => ITestAggregator) public phaseAggregators;

    constructor(address _aggregator) {
        owner = msg.sender;
        _setAggregator(_aggregator);
    }

    function confirmAggregator(address _aggregator) external {
        require(msg.sender == owner, "only owner");
        emit AggregatorConfirmed(address(phaseAggregators[phaseId]), _aggregator);
        _setAggregator(_aggregator);
    }

    function _setAggregator(address _aggregator) internal {
        uint16 id = phaseId + 1;
        phaseId = id;
        phaseAggregators[id] = ITestAggregator(_aggregator);
    }

    function aggregator() external view returns (address) {
        return address(phaseAggregators[phaseId]);
    }

    function decimals() external view returns (uint8) {
        return phaseAggregators[phaseId].decimals();
    }

    function description() external view returns (string memory) {
        return phaseAggregators[phaseId].description();
    }

    function version() external view returns (uint256) {
        return phaseAggregators[phaseId].version();
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        uint16 current = phaseId;
        (uint80 r, int256 a, uint256 s, uint256 u, uint80 ans) = phaseAggregators[current].latestRoundData();
        return (_addPhase(current, uint64(r)), a, s, u, _addPhase(current, uint64(ans)));
    }

    function getRoundData(uint80 _roundId)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        uint16 phase = uint16(_roundId >> PHASE_OFFSET);
        uint64 aggregatorRoundId = uint64(_roundId);
        ITestAggregator source = phaseAggregators[phase];
        require(address(source) != address(0), "No data present");
        (uint80 r, int256 a, uint256 s, uint256 u, uint80 ans) = source.getRoundData(aggregatorRoundId);
        return (_addPhase(phase, uint64(r)), a, s, u, _addPhase(phase, uint64(ans)));
    }

    function _addPhase(uint16 phase, uint64 originalId) internal pure returns (uint80) {
        return uint80(uint256(phase) << PHASE_OFFSET | originalId);
    }
}
