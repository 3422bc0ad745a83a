// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Test double of a Chainlink aggregator (FluxAggregator / OCR1 / OCR2 event shapes).
/// @notice Written for margin-backtester's RPC adapter tests. It stores rounds the way OCR aggregators
/// do (startedAt = updatedAt = block.timestamp, answeredInRound = roundId) and can emit any
/// combination of the production events, so one contract covers every feed generation:
///   bit 1 AnswerUpdated, bit 2 NewRound, bit 4 NewTransmission (OCR1), bit 8 NewTransmission (OCR2).
/// A mask of 0 transmits silently: the round is readable through getRoundData but leaves no log.
contract TestAggregator {
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);
    // OCR1 (OffchainAggregator)
    event NewTransmission(
        uint32 indexed aggregatorRoundId,
        int192 answer,
        address transmitter,
        int192[] observations,
        bytes observers,
        bytes32 rawReportContext
    );
    // OCR2 (OCR2Aggregator / AccessControlledOCR2Aggregator)
    event NewTransmission(
        uint32 indexed aggregatorRoundId,
        int192 answer,
        address transmitter,
        uint32 observationsTimestamp,
        int192[] observations,
        bytes observers,
        int192 juelsPerFeeCoin,
        bytes32 configDigest,
        uint40 epochAndRound
    );

    struct Transmission {
        int192 answer;
        uint64 timestamp;
    }

    uint8 public constant ANSWER_UPDATED = 1;
    uint8 public constant NEW_ROUND = 2;
    uint8 public constant OCR1_TRANSMISSION = 4;
    uint8 public constant OCR2_TRANSMISSION = 8;
    uint256 public constant version = 4;

    address public immutable owner;
    uint8 public immutable decimals;
    string public description;

    uint32 internal latestRoundId;
    mapping(uint32 => Transmission) internal transmissions;

    constructor(uint8 _decimals, string memory _description) {
        owner = msg.sender;
        decimals = _decimals;
        description = _description;
    }

    /// @notice Record one round at this block's timestamp and emit the events selected by `eventMask`.
    function transmit(int192 answer, uint8 eventMask) external {
        _transmit(answer, eventMask);
    }

    /// @notice Record several rounds in one transaction (used to build dense logs for benchmarks).
    function transmitBatch(int192[] calldata answers, uint8 eventMask) external {
        for (uint256 i = 0; i < answers.length; i++) {
            _transmit(answers[i], eventMask);
        }
    }

    function _transmit(int192 answer, uint8 eventMask) internal {
        require(msg.sender == owner, "only owner");
        uint32 roundId = latestRoundId + 1;
        latestRoundId = roundId;
        transmissions[roundId] = Transmission(answer, uint64(block.timestamp));
        if (eventMask & (OCR1_TRANSMISSION | OCR2_TRANSMISSION) != 0) {
            // Three observations whose median is the answer, as an honest report would carry.
            int192[] memory observations = new int192[](3);
            observations[0] = answer - 1;
            observations[1] = answer;
            observations[2] = answer + 1;
            if (eventMask & OCR1_TRANSMISSION != 0) {
                emit NewTransmission(roundId, answer, msg.sender, observations, hex"000102", bytes32(uint256(roundId)));
            }
            if (eventMask & OCR2_TRANSMISSION != 0) {
                emit NewTransmission(
                    roundId, answer, msg.sender, uint32(block.timestamp), observations, hex"000102",
                    int192(1e16), bytes32(uint256(0xc0ffee)), uint40(roundId)
                );
            }
        }
        if (eventMask & NEW_ROUND != 0) {
            emit NewRound(roundId, address(0), block.timestamp);
        }
        if (eventMask & ANSWER_UPDATED != 0) {
            emit AnswerUpdated(answer, roundId, block.timestamp);
        }
    }

    function latestRound() external view returns (uint256) {
        return latestRoundId;
    }

    function latestAnswer() external view returns (int256) {
        return transmissions[latestRoundId].answer;
    }

    function latestTimestamp() external view returns (uint256) {
        return transmissions[latestRoundId].timestamp;
    }

    function getAnswer(uint256 roundId) external view returns (int256) {
        if (roundId > type(uint32).max) return 0;
        return transmissions[uint32(roundId)].answer;
    }

    function getTimestamp(uint256 roundId) external view returns (uint256) {
        if (roundId > type(uint32).max) return 0;
        return transmissions[uint32(roundId)].timestamp;
    }

    function getRoundData(uint80 _roundId)
        public
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        require(_roundId <= type(uint32).max, "No data present");
        Transmission memory t = transmissions[uint32(_roundId)];
        require(t.timestamp > 0, "No data present");
        return (_roundId, t.answer, t.timestamp, t.timestamp, _roundId);
    }

    /// @notice Like OCR aggregators, returns zeros (instead of reverting) before the first round.
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        uint32 r = latestRoundId;
        Transmission memory t = transmissions[r];
        return (r, t.answer, t.timestamp, t.timestamp, r);
    }
}
