use super::*;

#[test]
fn starts_closed_in_generation_zero() {
    let machine = StateMachine::new(CircuitBreakerConfig::default(), Instant::now()).unwrap();
    assert_eq!(machine.state(), CircuitState::Closed);
    assert_eq!(machine.generation(), 0);
}
