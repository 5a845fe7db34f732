"""The home page's small figures: each tells, at smoke scale, the story its card tells."""


def test_home_figures_show_what_their_cards_say(smoke_claims):
    xor = smoke_claims("home-xor")
    assert xor["final_test_accuracy"] >= 0.9  # the default network learns XOR (chance is about 0.5)
    ravine = smoke_claims("home-ravine")
    assert ravine["sgd_final_loss"] < ravine["start_loss"] and ravine["adam_final_loss"] < ravine["start_loss"]
    induction = smoke_claims("home-induction")
    assert induction["head"].startswith("L1")  # induction needs the second layer
    assert induction["induction_score"] > 5 * induction["uniform_induction_score"]
