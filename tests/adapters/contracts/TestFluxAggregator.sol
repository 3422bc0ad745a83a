// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Test double of a Chainlink FluxAggregator's read side (rounds, events, V3 views).
/// @notice Written for margin-backtester's RPC adapter tests. Like the production FluxAggregator,
/// getRoundData and latestRoundData revert with "No data present" for a round that has no answer, so
/// latestRoundData reverts before the first round (OCR aggregators return zeros instead). `submit`
/// records one round at this block's timestamp and emits NewRound + AnswerUpdated, or nothing when
/// `withEvents` is false (the round is then readable only through getRoundData).
contract TestFluxAggregator {
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

    struct Round {
        int256 answer;
        uint64 startedAt;
        uint64 updatedAt;
        uint32 answeredInRound;
    }

    string private constant V3_NO_DATA_ERROR = "No data present";
    uint256 public constant version = 3;

    address public immutable owner;
    uint8 public immutable decimals;
    string public description;

    uint32 internal latestRoundId;
    mapping(uint32 => Round) internal rounds;

    constructor(uint8 _decimals, string memory _description) {
        owner = msg.sender;
        decimals = _decimals;
        description = _description;
    }

    function submit(int256 answer, bool withEvents) external {
        require(msg.sender == owner, "only owner");
        uint32 roundId = latestRoundId + 1;
        latestRoundId = roundId;
        rounds[roundId] = Round(answer, uint64(block.timestamp), uint64(block.timestamp), roundId);
        if (withEvents) {
            emit NewRound(roundId, msg.sender, block.timestamp);
            emit AnswerUpdated(answer, roundId, block.timestamp);
        }
    }

    function latestRound() external view returns (uint256) {
        return latestRoundId;
    }

    function getRoundData(uint80 _roundId)
        public
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        Round memory r = rounds[uint32(_roundId)];
        require(r.answeredInRound > 0 && r.updatedAt > 0, V3_NO_DATA_ERROR);
        return (_roundId, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return getRoundData(latestRoundId);
    }
}
