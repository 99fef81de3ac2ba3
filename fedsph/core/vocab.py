"""The controlled vocabularies of DOMAIN.md: slugs on the wire, labels in every interface language.

Labels are data, not interface strings, so they live here rather than in the gettext catalogs:
one dict per field, slug -> {lang: label}. The order of each dict is the order forms show.
"""

from __future__ import annotations

UI_LANGUAGES = ("en", "es", "fr", "pt")


def _t(en: str, es: str, fr: str, pt: str) -> dict[str, str]:
    return {"en": en, "es": es, "fr": fr, "pt": pt}


_OTHER = _t("Other", "Otro", "Autre", "Outro")

STAGE = {
    "initiating": _t("Initiating", "En formación", "En démarrage", "Em formação"),
    "planning": _t("Planning", "En planificación", "En conception", "Em planejamento"),
    "building": _t("Building", "En obra", "En chantier", "Em obra"),
    "living": _t("Lived in", "Habitado", "Habité", "Habitado"),
    "dissolved": _t("Dissolved", "Disuelto", "Dissous", "Dissolvido"),
    "demolished": _t("Demolished", "Demolido", "Démoli", "Demolido"),
}

APPROACH = {
    "housing_cooperative": _t("Housing cooperative", "Cooperativa de vivienda",
                              "Coopérative d'habitation", "Cooperativa habitacional"),
    "mutual_aid_cooperative": _t("Mutual-aid cooperative", "Cooperativa de ayuda mutua",
                                 "Coopérative d'aide mutuelle", "Cooperativa de ajuda mútua"),
    "community_land_trust": _t("Community land trust", "Fideicomiso comunitario de tierras",
                               "Organisme foncier solidaire", "Termo Territorial Coletivo"),
    "cohousing": _t("Cohousing", "Covivienda", "Habitat participatif", "Habitação colaborativa"),
    "self_build": _t("Self-build", "Autoconstrucción", "Autoconstruction", "Autoconstrução"),
    "self_help_renovation": _t("Self-help renovation", "Autorrehabilitación",
                               "Auto-réhabilitation", "Reabilitação por autoajuda"),
    "tenant_management": _t("Tenant management", "Gestión por los inquilinos",
                            "Gestion par les locataires", "Gestão pelos inquilinos"),
    "slum_upgrading_in_situ": _t("In-situ slum upgrading", "Mejoramiento de barrios in situ",
                                 "Amélioration des quartiers précaires in situ",
                                 "Urbanização de favelas in situ"),
    "incremental_housing": _t("Incremental housing", "Vivienda progresiva", "Habitat évolutif",
                              "Habitação evolutiva"),
    "resettlement": _t("Resettlement", "Reasentamiento", "Réinstallation", "Reassentamento"),
    "savings_federation_project": _t("Savings federation project",
                                     "Proyecto de federación de ahorro",
                                     "Projet de fédération d'épargne",
                                     "Projeto de federação de poupança"),
    "collective_rental": _t("Collective rental", "Alquiler colectivo", "Location collective",
                            "Aluguel coletivo"),
    "other": _OTHER,
}

TENURE = {
    "collective_ownership_cooperative": _t("Collective ownership (cooperative)",
                                           "Propiedad colectiva (cooperativa)",
                                           "Propriété collective (coopérative)",
                                           "Propriedade coletiva (cooperativa)"),
    "use_rights_in_cooperative": _t("Use rights in a cooperative", "Derecho de uso en cooperativa",
                                    "Droit d'usage en coopérative",
                                    "Direito de uso em cooperativa"),
    "clt_ground_lease": _t("Community land trust ground lease",
                           "Arrendamiento del suelo (fideicomiso comunitario)",
                           "Bail réel solidaire (organisme foncier solidaire)",
                           "Arrendamento do solo (Termo Territorial Coletivo)"),
    "individual_ownership": _t("Individual ownership", "Propiedad individual",
                               "Propriété individuelle", "Propriedade individual"),
    "shared_ownership": _t("Shared ownership", "Propiedad compartida", "Propriété partagée",
                           "Propriedade compartilhada"),
    "rental_social": _t("Social rental", "Alquiler social", "Location sociale", "Aluguel social"),
    "rental_cooperative": _t("Cooperative rental", "Alquiler cooperativo", "Location coopérative",
                             "Aluguel cooperativo"),
    "collective_lease_public_land": _t("Collective lease of public land",
                                       "Arrendamiento colectivo de tierra pública",
                                       "Bail collectif sur un terrain public",
                                       "Concessão coletiva de terra pública"),
    "customary_communal": _t("Customary or communal tenure", "Tenencia consuetudinaria o comunal",
                             "Régime foncier coutumier ou communautaire",
                             "Posse consuetudinária ou comunal"),
    "occupation_informal": _t("Informal occupation", "Ocupación informal",
                              "Occupation informelle", "Ocupação informal"),
    "in_regularisation": _t("Being regularised", "En regularización",
                            "En cours de régularisation", "Em regularização"),
    "other": _OTHER,
}

FINANCING = {
    "member_savings": _t("Members' savings", "Ahorro de los socios", "Épargne des membres",
                         "Poupança dos membros"),
    "revolving_fund": _t("Revolving fund", "Fondo rotatorio", "Fonds renouvelable",
                         "Fundo rotativo"),
    "community_development_fund": _t("Community development fund",
                                     "Fondo de desarrollo comunitario",
                                     "Fonds de développement communautaire",
                                     "Fundo de desenvolvimento comunitário"),
    "public_subsidy": _t("Public subsidy", "Subsidio público", "Subvention publique",
                         "Subsídio público"),
    "public_loan": _t("Public loan", "Préstamo público", "Prêt public", "Empréstimo público"),
    "bank_loan": _t("Bank loan", "Préstamo bancario", "Prêt bancaire", "Empréstimo bancário"),
    "ethical_bank": _t("Ethical bank", "Banca ética", "Banque éthique", "Banco ético"),
    "solidarity_finance": _t("Solidarity finance", "Finanzas solidarias", "Finance solidaire",
                             "Finanças solidárias"),
    "donor_grant": _t("Donor grant", "Donación de cooperación", "Subvention de bailleur de fonds",
                      "Doação de financiador"),
    "mutual_aid_labour": _t("Mutual-aid labour", "Trabajo de ayuda mutua",
                            "Travail en aide mutuelle", "Mutirão (trabalho de ajuda mútua)"),
    "crowdfunding": _t("Crowdfunding", "Financiamiento colectivo", "Financement participatif",
                       "Financiamento coletivo"),
    "other": _OTHER,
}

SETTLEMENT_TYPE = {
    "urban": _t("Urban", "Urbano", "Urbain", "Urbano"),
    "peri_urban": _t("Peri-urban", "Periurbano", "Périurbain", "Periurbano"),
    "rural": _t("Rural", "Rural", "Rural", "Rural"),
    "informal_settlement": _t("Informal settlement", "Asentamiento informal",
                              "Quartier informel", "Assentamento informal"),
    "historic_centre": _t("Historic centre", "Centro histórico", "Centre historique",
                          "Centro histórico"),
    "camp": _t("Camp", "Campamento", "Camp", "Acampamento"),
}

THEMES = {
    "access_to_land": _t("Access to land", "Acceso a la tierra", "Accès au foncier",
                         "Acesso à terra"),
    "finance": _t("Finance", "Financiamiento", "Financement", "Financiamento"),
    "self_management": _t("Self-management", "Autogestión", "Autogestion", "Autogestão"),
    "mutual_aid": _t("Mutual aid", "Ayuda mutua", "Entraide", "Ajuda mútua"),
    "gender_women": _t("Gender and women", "Género y mujeres", "Genre et femmes",
                       "Gênero e mulheres"),
    "youth": _t("Youth", "Juventud", "Jeunesse", "Juventude"),
    "climate_adaptation": _t("Climate adaptation", "Adaptación al cambio climático",
                             "Adaptation au changement climatique",
                             "Adaptação às mudanças climáticas"),
    "disaster_reconstruction": _t("Post-disaster reconstruction", "Reconstrucción post-desastre",
                                  "Reconstruction après une catastrophe",
                                  "Reconstrução pós-desastre"),
    "eviction_resistance": _t("Resisting evictions", "Resistencia a los desalojos",
                              "Lutte contre les expulsions", "Resistência aos despejos"),
    "tenure_security": _t("Tenure security", "Seguridad de la tenencia",
                          "Sécurité d'occupation", "Segurança da posse"),
    "basic_services": _t("Basic services", "Servicios básicos", "Services de base",
                         "Serviços básicos"),
    "public_space": _t("Public space", "Espacio público", "Espace public", "Espaço público"),
    "income_generation": _t("Income generation", "Generación de ingresos",
                            "Génération de revenus", "Geração de renda"),
    "local_materials": _t("Local materials", "Materiales locales", "Matériaux locaux",
                          "Materiais locais"),
    "energy_efficiency": _t("Energy efficiency", "Eficiencia energética",
                            "Efficacité énergétique", "Eficiência energética"),
    "advocacy_policy": _t("Advocacy and public policy", "Incidencia y políticas públicas",
                          "Plaidoyer et politiques publiques", "Incidência e políticas públicas"),
    "peer_exchange": _t("Peer exchange", "Intercambio entre pares", "Échanges entre pairs",
                        "Intercâmbio entre pares"),
    "inclusion_migrants": _t("Inclusion of migrants", "Inclusión de personas migrantes",
                             "Inclusion des personnes migrantes", "Inclusão de migrantes"),
    "older_people": _t("Older people", "Personas mayores", "Personnes âgées", "Pessoas idosas"),
    "heritage": _t("Heritage", "Patrimonio", "Patrimoine", "Patrimônio"),
}

PARTNER_ROLE = {
    "inhabitant_group": _t("Inhabitant group", "Grupo de habitantes", "Groupe d'habitants",
                           "Grupo de moradores"),
    "technical_support": _t("Technical support", "Asistencia técnica", "Assistance technique",
                            "Assessoria técnica"),
    "architect": _t("Architect", "Arquitecto/a", "Architecte", "Arquiteto/a"),
    "builder": _t("Builder", "Constructora", "Entreprise de construction", "Construtora"),
    "financier": _t("Financier", "Entidad financiadora", "Financeur", "Financiador"),
    "public_authority": _t("Public authority", "Autoridad pública", "Autorité publique",
                           "Poder público"),
    "network": _t("Network", "Red", "Réseau", "Rede"),
    "researcher": _t("Researcher", "Investigador/a", "Chercheur·e", "Pesquisador/a"),
}

REGION = {
    "latin_america_caribbean": _t("Latin America and the Caribbean", "América Latina y el Caribe",
                                  "Amérique latine et Caraïbes", "América Latina e Caribe"),
    "europe": _t("Europe", "Europa", "Europe", "Europa"),
    "north_america": _t("North America", "América del Norte", "Amérique du Nord",
                        "América do Norte"),
    "africa": _t("Africa", "África", "Afrique", "África"),
    "asia_pacific": _t("Asia-Pacific", "Asia-Pacífico", "Asie-Pacifique", "Ásia-Pacífico"),
    "mena": _t("Middle East and North Africa", "Oriente Medio y Norte de África",
               "Moyen-Orient et Afrique du Nord", "Oriente Médio e Norte da África"),
}

LOCATION_PRECISION = {
    "exact": _t("Exact location", "Ubicación exacta", "Emplacement exact", "Localização exata"),
    "neighbourhood": _t("Neighbourhood", "Barrio", "Quartier", "Bairro"),
    "city": _t("City", "Ciudad", "Ville", "Cidade"),
    "country": _t("Country", "País", "Pays", "País"),
}

LINK_KIND = {
    "website": _t("Website", "Sitio web", "Site web", "Site"),
    "video": _t("Video", "Video", "Vidéo", "Vídeo"),
    "document": _t("Document", "Documento", "Document", "Documento"),
    "press": _t("Press", "Prensa", "Presse", "Imprensa"),
}

UPDATE_KIND = {
    "progress": _t("Progress", "Avance", "Avancement", "Andamento"),
    "milestone": _t("Milestone", "Hito", "Étape clé", "Marco"),
    "call_for_solidarity": _t("Call for solidarity", "Llamado a la solidaridad",
                              "Appel à la solidarité", "Chamado à solidariedade"),
    "alert": _t("Alert", "Alerta", "Alerte", "Alerta"),
    "event_report": _t("Event report", "Crónica de evento", "Compte rendu d'événement",
                       "Relato de evento"),
    "publication": _t("Publication", "Publicación", "Publication", "Publicação"),
    "exchange_visit": _t("Exchange visit", "Visita de intercambio", "Visite d'échange",
                         "Visita de intercâmbio"),
}

# Issue 5: solidarity links between projects, events, and how people may join an event.
SOLIDARITY_LINK = {
    "twinned_with": _t("Twinned with", "Hermanado con", "Jumelé avec", "Geminado com"),
    "mentors": _t("Mentors", "Acompaña como mentor a", "Parraine", "É mentor de"),
    "technical_support": _t("Technical support to", "Apoyo técnico a", "Appui technique à",
                            "Apoio técnico a"),
    "funds": _t("Funds", "Financia a", "Finance", "Financia"),
    "exchange_visit": _t("Exchange visit with", "Visita de intercambio con",
                         "Visite d'échange avec", "Visita de intercâmbio com"),
}

EVENT_KIND = {
    "hub_meeting": _t("HUB meeting", "Encuentro HUB", "Rencontre HUB", "Encontro HUB"),
    "exchange_visit": _t("Exchange visit", "Visita de intercambio", "Visite d'échange",
                         "Visita de intercâmbio"),
    "assembly": _t("Assembly", "Asamblea", "Assemblée", "Assembleia"),
    "workshop": _t("Workshop", "Taller", "Atelier", "Oficina"),
    "webinar": _t("Webinar", "Seminario web", "Webinaire", "Webinário"),
}

JOIN_MODE = {
    "free": _t("Anyone can join", "Abierto a todas las personas", "Ouvert à tous",
               "Aberto a todas as pessoas"),
    "restricted": _t("Joining needs approval", "Participación con aprobación",
                     "Participation sur approbation", "Participação com aprovação"),
    "invite": _t("By invitation", "Solo con invitación", "Sur invitation", "Somente com convite"),
}

LICENSE = {
    "CC0": _t("CC0 (public domain)", "CC0 (dominio público)", "CC0 (domaine public)",
              "CC0 (domínio público)"),
    "CC-BY-4.0": _t("CC BY 4.0 (attribution)", "CC BY 4.0 (atribución)",
                    "CC BY 4.0 (attribution)", "CC BY 4.0 (atribuição)"),
    "CC-BY-SA-4.0": _t("CC BY-SA 4.0 (attribution, share alike)",
                       "CC BY-SA 4.0 (atribución, compartir igual)",
                       "CC BY-SA 4.0 (attribution, partage dans les mêmes conditions)",
                       "CC BY-SA 4.0 (atribuição, compartilha igual)"),
}

# The licence deeds, for links next to an image and for the wire.
LABELS: dict[str, dict[str, dict[str, str]]] = {
    "stage": STAGE,
    "approach": APPROACH,
    "tenure": TENURE,
    "financing": FINANCING,
    "settlement_type": SETTLEMENT_TYPE,
    "themes": THEMES,
    "partner_role": PARTNER_ROLE,
    "region": REGION,
    "location_precision": LOCATION_PRECISION,
    "link_kind": LINK_KIND,
    "update_kind": UPDATE_KIND,
    "license": LICENSE,
    "solidarity_link": SOLIDARITY_LINK,
    "event_kind": EVENT_KIND,
    "join_mode": JOIN_MODE,
}

VOCABULARIES: dict[str, tuple[str, ...]] = {field: tuple(slugs) for field, slugs in LABELS.items()}


def is_valid(field: str, slug: str) -> bool:
    """True when slug belongs to the vocabulary of field (an unknown field has no valid slug)."""
    return slug in LABELS.get(field, ())


def label(field: str, slug: str, lang: str | None = "en") -> str:
    """The label of slug in lang; English when that language lacks it; the slug itself when unknown.

    A slug from another node's newer vocabulary is still shown, as its slug.
    """
    labels = LABELS.get(field, {}).get(slug)
    if not labels:
        return slug
    primary = (lang or "en").split("-")[0].lower()
    return labels.get(primary) or labels.get("en") or slug


def choices(field: str, lang: str | None = "en") -> list[tuple[str, str]]:
    """(slug, label) pairs in vocabulary order, for select boxes and checkbox lists."""
    return [(slug, label(field, slug, lang)) for slug in VOCABULARIES.get(field, ())]
